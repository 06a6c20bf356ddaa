// Package app wires Deputy together: configuration -> store -> pipeline -> servers. It is the
// only package that names concrete stores and servers.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deputy-iam/deputy/internal/api"
	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/authn"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/config"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/httpx"
	"github.com/deputy-iam/deputy/internal/lifecycle"
	"github.com/deputy-iam/deputy/internal/notify"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/web"
)

// App is a running Deputy: its store, its pipeline and what serves them.
type App struct {
	Config   config.Config
	Store    *store.Store
	Pipeline *change.Pipeline
	Engine   *delegation.Engine
	// HR is the lifecycle service: rules, feed imports, recompute and the scheduled sweep.
	HR *lifecycle.Service
	// Evidence signs checkpoints and builds proofs; nil until the signing key exists (init).
	Evidence *audit.Evidence
	Log      *slog.Logger
	registry *prometheus.Registry
	// auth signs people in and authenticates requests; Handler serves it, PrepareOIDC adds OIDC.
	auth *authn.Authenticator
}

// Open opens the configured database (migrating it) and builds the pipeline.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	st, err := store.Open(ctx, cfg.DSN(), log)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ops := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "deputy_ops_duration_seconds", Help: "Ops submitted to the change pipeline, by action and outcome.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
	}, []string{"action", "outcome"})
	reg.MustRegister(ops)
	observe := func(action delegation.Action, outcome audit.Outcome, d time.Duration) {
		ops.WithLabelValues(string(action), string(outcome)).Observe(d.Seconds())
	}
	engine := delegation.NewEngine(log)
	if err := engine.Load(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	gate := approval.NewGate(engine)
	limits, err := cfg.SignIn()
	if err != nil {
		st.Close()
		return nil, err
	}
	opts := []change.Option{change.WithObserver(observe), change.WithGate(gate)}
	if limits.KeyMaxDays > 0 {
		opts = append(opts, change.WithMaxKeyDays(limits.KeyMaxDays))
	}
	p := change.New(st, engine, log, opts...)
	if err := p.LoadPolicies(ctx); err != nil {
		st.Close()
		return nil, err
	}
	loc, err := cfg.Timezone()
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &App{Config: cfg, Store: st, Pipeline: p, Engine: engine, Log: log, registry: reg,
		HR: &lifecycle.Service{Store: st, Applier: p, Config: p, Location: loc, Portal: strings.TrimRight(cfg.BaseURL, "/")}}
	a.auth = authn.New(st, st, log).WithSessions(st, p, engine, credential.PasswordPolicy{},
		authn.Config{SecureCookie: cfg.TLSCert != "", MFAOptional: cfg.MFA == "optional", IdleTimeout: limits.SessionIdle,
			AbsoluteTimeout: limits.SessionMax, LockoutThreshold: limits.LockoutAfter, LockoutDuration: limits.LockoutFor,
			StepUpWindow: limits.StepUpWindow})
	if err := a.openEvidence(ctx); err != nil {
		st.Close()
		return nil, err
	}
	reg.MustRegister(newEvidenceCollector(a), newRequestsCollector(a))
	return a, nil
}

// openEvidence starts the evidence service when the signing key exists.
func (a *App) openEvidence(ctx context.Context) error {
	key, err := os.ReadFile(a.Config.SigningKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	every, interval, err := a.Config.Checkpoints()
	if err != nil {
		return err
	}
	a.Evidence, err = audit.NewEvidence(ctx, a.Store, audit.EvidenceOptions{SigningKey: strings.TrimSpace(string(key)),
		File: a.Config.CheckpointFile, Every: every, Interval: interval}, a.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Config.SigningKey, err)
	}
	return nil
}

// Close closes the store.
func (a *App) Close() error { return a.Store.Close() }

// AuthPatterns lists the sign-in routes the handler serves besides the API's.
func (a *App) AuthPatterns() []string { return a.auth.Patterns() }

// Handler returns the HTTP handler: the REST API, health and readiness probes, and metrics.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	auth := a.auth
	srv := api.New(a.Pipeline, a.Engine, a.Store, a.Store, a.Store, a.Log).WithRequests(a.Store).WithHR(a.HR).WithCredentials(a.Store, auth.StepUp).WithPortal(a.Config.BaseURL)
	if a.Evidence != nil {
		srv.WithEvidence(a.Evidence)
	}
	srv.WithKeys(a.Store)
	srv.Register(mux, auth.Require)
	auth.Register(mux, a.Pipeline) // OIDC's routes too: without OIDC they say so (auth/methods, 404 oidc_disabled)
	portal, err := web.New(web.Deps{Auth: auth, Pipeline: a.Pipeline, Authz: a.Engine, Dir: a.Store, Deleg: a.Store,
		Requests: a.Store, Audit: a.Store, Memberships: a.Store, Credentials: a.Store, Log: a.Log,
		Evidence: a.portalEvidence(), AuditKey: auditPublicKey(a.Config.SigningKey), HR: a.HR,
		SAKeys: a.Store, DelegEngine: a.Engine, ApprovalPolicies: a.Store,
		Portal: strings.TrimRight(a.Config.BaseURL, "/")})
	if err != nil {
		panic(fmt.Sprintf("portal templates: %v", err)) // embedded: a broken template is a build defect
	}
	portal.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.Store.Ping(ctx); err != nil {
			a.Log.WarnContext(ctx, "not ready", "err", err)
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "unreachable"})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "database": a.Store.Dialect()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	mux.HandleFunc("/", httpx.Fallback(mux, a.Log))
	proxies, _ := a.Config.Proxies() // validated with the configuration
	return httpx.Chain(mux, httpx.TrustedProxies(proxies), httpx.Observe(a.Log, httpx.NewMetrics(a.registry)), httpx.SecureHeaders)
}

// portalEvidence is the evidence service as the portal reads it: nil (not a nil pointer) when
// there is no signing key.
func (a *App) portalEvidence() web.Evidence {
	if a.Evidence == nil {
		return nil
	}
	return a.Evidence
}

// auditPublicKey is the audit signing key's public half (the .pub file deputy init wrote beside
// it), "" when it cannot be read.
func auditPublicKey(signingKey string) string {
	b, err := os.ReadFile(strings.TrimSuffix(signingKey, filepath.Ext(signingKey)) + ".pub")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// PrepareOIDC turns on OIDC sign-in when an issuer is configured. It discovers the provider; an
// error (the provider unreachable, or not the issuer it says) means the server must not start.
// It MUST run before Handler serves a request; Serve calls it first. Open does not, so that
// init and break-glass recovery never depend on the identity provider.
func (a *App) PrepareOIDC(ctx context.Context) error {
	c := a.Config
	if c.OIDCIssuer == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.auth.WithOIDC(ctx, authn.OIDCConfig{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID,
		ClientSecret: c.OIDCClientSecret, RedirectURL: c.OIDCRedirectURL, UsernameClaim: c.OIDCUsernameClaim}); err != nil {
		a.Log.Error("oidc sign-in cannot start", "issuer", c.OIDCIssuer, "err", err)
		return err
	}
	a.Log.Info("oidc sign-in on", "issuer", c.OIDCIssuer, "username_claim", c.OIDCUsernameClaim)
	return nil
}

// PreparePolicies puts the approval policies in force: those of the policy file when one is
// configured (replacing the stored set, recorded as one audit event when it changed), otherwise
// the stored ones, which on a new installation are the shipped defaults.
func (a *App) PreparePolicies(ctx context.Context) error {
	if a.Config.Policies == "" {
		return a.Pipeline.InstallDefaultPolicies(ctx)
	}
	b, err := os.ReadFile(a.Config.Policies)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	ps, err := approval.ParseFile(b)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Config.Policies, err)
	}
	if err := a.Pipeline.ReplacePolicies(ctx, delegation.SystemActor("deputy"), change.Meta{Transport: audit.TransportCLI}, ps); err != nil {
		return fmt.Errorf("%s: %w", a.Config.Policies, err)
	}
	return nil
}

// sweepRequests expires, escalates and reminds open requests every sweep interval (and at
// once), and re-reads the policies, which another replica may have changed.
func (a *App) sweepRequests(ctx context.Context) {
	every, _ := a.Config.Sweep()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := a.Pipeline.Sweep(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("approval sweep failed", "err", err)
		} else if n > 0 {
			a.Log.Info("approval requests swept", "changed", n)
		}
		if err := a.Pipeline.LoadPolicies(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("reload approval policies", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PrepareRules loads the rules file, when one is configured, replacing the stored rule set
// (recorded as one audit event when it changed).
func (a *App) PrepareRules(ctx context.Context) error {
	if a.Config.Rules == "" {
		return nil
	}
	b, err := os.ReadFile(a.Config.Rules)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	rs, err := lifecycle.ParseRules(b)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Config.Rules, err)
	}
	if err := a.HR.SetRules(ctx, delegation.SystemActor("deputy"), change.Meta{Transport: audit.TransportCLI}, rs); err != nil {
		return fmt.Errorf("%s: %w", a.Config.Rules, err)
	}
	return nil
}

// sweepLifecycle runs the scheduled lifecycle work (a recompute: leavers at their end date,
// deletions after retention, rule changes) at once and then every interval, while rules are set.
// It refuses a mass change like an import does: an operator applies that by hand.
func (a *App) sweepLifecycle(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		run, _, err := a.HR.Recompute(ctx, lifecycle.ImportOptions{Source: "schedule", QuietWhenIdle: true})
		switch {
		case errors.Is(err, lifecycle.ErrNoRules):
		case err != nil && ctx.Err() == nil:
			a.Log.Warn("lifecycle sweep", "err", err)
		case run != nil && run.Ops > 0:
			a.Log.Info("lifecycle sweep", "run", run.ID, "ops", run.Ops, "applied", run.Applied, "failed", len(run.Failed))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// notifier delivers the outbox's notifications through the configured channels.
func (a *App) notifier() *notify.Notifier {
	c := a.Config
	return notify.New(a.Store, notify.Options{SMTPAddr: c.SMTPAddr, SMTPFrom: c.SMTPFrom, SMTPUser: c.SMTPUser,
		SMTPPassword: c.SMTPPassword, MailDir: c.MailDir, Webhook: c.NotifyWebhook, BaseURL: c.BaseURL}, a.Log)
}

// sinks are the configured audit sinks.
func (a *App) sinks() []audit.Sink {
	var out []audit.Sink
	if a.Config.AuditWebhook != "" {
		out = append(out, &audit.Webhook{URL: a.Config.AuditWebhook})
	}
	if a.Config.AuditSyslog != "" {
		out = append(out, &audit.Syslog{Addr: a.Config.AuditSyslog})
	}
	return out
}

// Listen opens the configured address.
func (a *App) Listen() (net.Listener, error) {
	l, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a.Config.Addr, err)
	}
	return l, nil
}

// Serve serves on l until ctx is cancelled, then shuts down gracefully: it stops accepting,
// lets requests in flight finish (up to the shutdown timeout) and returns. Every change that was
// acknowledged is already committed, so stopping at any point loses nothing.
func (a *App) Serve(ctx context.Context, l net.Listener) error {
	if err := a.PrepareOIDC(ctx); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if a.Config.TLSCert != "" {
			errc <- srv.ServeTLS(l, a.Config.TLSCert, a.Config.TLSKey)
			return
		}
		errc <- srv.Serve(l)
	}()
	// Checkpoints are signed while serving, and once more on the way out.
	ectx, stopEvidence := context.WithCancel(ctx)
	evidenceDone := make(chan struct{})
	if a.Evidence != nil {
		go func() { a.Evidence.Run(ectx); close(evidenceDone) }()
	} else {
		close(evidenceDone)
	}
	// Audit sinks follow the log from their cursors until the server stops.
	var sinks sync.WaitGroup
	for _, sink := range a.sinks() {
		sinks.Go(func() { audit.Forward(ectx, a.Store, sink, 500, time.Second, a.Log) })
	}
	// Open requests expire, escalate and remind on schedule; the due times are in the database.
	sinks.Go(func() { a.sweepRequests(ectx) })
	if every, _ := a.Config.LifecycleSweep(); every > 0 {
		sinks.Go(func() { a.sweepLifecycle(ectx, every) })
	}
	if n := a.notifier(); n.Enabled() {
		sinks.Go(func() { n.Run(ectx) })
	}
	defer func() { stopEvidence(); <-evidenceDone; sinks.Wait() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.Log.Info("shutting down", "timeout", a.Config.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
