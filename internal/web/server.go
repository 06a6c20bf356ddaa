// Package web is the portal: server-rendered pages for delegates, approvers and everyone's
// self-service. Every action posts through the change pipeline; a button appears only for what
// the signed-in person may do (asked of the authorizer), and the pipeline checks again anyway.
// Forms carry the session's CSRF token; pages need a session (password sign-in, see authn).
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/authn"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Authz is what the portal asks the delegation engine.
type Authz interface {
	Allowed(ctx context.Context, actor delegation.Actor, obj delegation.Object, actions []delegation.Action) []delegation.Action
	Visibility(actor delegation.Actor, kind directory.Kind) (all bool, expr filter.Expr)
	Grants(principal string) []delegation.Grant
}

// Requests reads approval requests.
type Requests interface {
	Request(ctx context.Context, id string) (approval.Request, error)
	Requests(ctx context.Context, q approval.Query) ([]approval.Request, error)
}

// Memberships reads a member's direct memberships with their provenance, and all of them
// (through nested groups too, with the chain).
type Memberships interface {
	DirectMemberships(ctx context.Context, member directory.Ref) ([]directory.DirectMembership, error)
	Memberships(ctx context.Context, member directory.Ref) ([]directory.Membership, error)
}

// Credentials reads a user's credential state (whether they are locked out now).
type Credentials interface {
	UserCredential(ctx context.Context, userID string) (credential.UserCredential, error)
}

// Deps are what the portal's pages read and submit through.
type Deps struct {
	Auth        *authn.Authenticator
	Pipeline    *change.Pipeline
	Authz       Authz
	Dir         directory.Reader
	Deleg       delegation.Reader
	Requests    Requests
	Audit       audit.Reader
	Memberships Memberships
	Credentials Credentials
	Log         *slog.Logger
	// Portal is the portal's external address (--base-url, without a trailing slash), for
	// links in notifications; "" leaves them as paths.
	Portal string
	// Evidence signs and proves the audit log's checkpoints (audit.Evidence; evidence.go), nil
	// without a signing key; AuditKey is the signing key's public half, to check them with.
	Evidence Evidence
	AuditKey string
	// HR imports HR feeds (lifecycle.Service; evidence.go), nil without the HR lifecycle.
	HR HR
	// SAKeys lists service accounts' API keys, never their secrets (directory.go).
	SAKeys SAKeys
	// DelegEngine answers who-can and the escalation report, and tells the approval gate who
	// could approve (the delegation engine; delegation.go).
	DelegEngine DelegEngine
	// ApprovalPolicies reads the approval policies, for a grant's preview (delegation.go).
	ApprovalPolicies ApprovalPolicies
}

// Server renders the portal.
type Server struct {
	Deps
	pages map[string]*template.Template
	// feeds keeps uploaded HR feeds between their plan and their apply (evidence.go).
	feeds *feedStore
}

// New parses the portal's templates.
func New(d Deps) (*Server, error) {
	s := &Server{Deps: d, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, "/layout.html") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		s.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return s, nil
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"has": func(list []delegation.Action, a string) bool {
		for _, x := range list {
			if string(x) == a {
				return true
			}
		}
		return false
	},
	"words": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"val":   readable,
}

// readable renders a value of an event's before or after for people: a reference by its name
// (and type), a list joined, a map as "key: value" pairs, nothing as a dash.
func readable(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case string:
		if x == "" {
			return "—"
		}
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, readable(e))
		}
		if len(parts) == 0 {
			return "—"
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if name, ok := x["name"].(string); ok && name != "" {
			if t, ok := x["type"].(string); ok && t != "" {
				return name + " (" + strings.ReplaceAll(t, "_", " ") + ")"
			}
			return name
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+": "+readable(x[k]))
		}
		if len(parts) == 0 {
			return "—"
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprint(v)
}

// Register adds the portal's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET /sign-in", s.signInPage)
	mux.HandleFunc("POST /sign-in", s.signIn)
	mux.HandleFunc("POST /sign-out", s.page(s.signOut))
	mux.HandleFunc("GET /forgot-password", s.forgotPage)
	mux.HandleFunc("POST /forgot-password", s.forgot)
	mux.HandleFunc("POST /reset-password", s.resetForgotten)
	mux.HandleFunc("GET /activate", s.activatePage)
	mux.HandleFunc("POST /activate", s.activate)
	mux.HandleFunc("GET /password", s.page(s.passwordPage))
	mux.HandleFunc("POST /password", s.page(s.changePassword))
	mux.HandleFunc("GET /mfa", s.page(s.mfaPage))
	mux.HandleFunc("POST /mfa", s.page(s.mfaStart))
	mux.HandleFunc("POST /mfa/confirm", s.page(s.mfaConfirm))
	mux.HandleFunc("GET /{$}", s.page(s.home))
	mux.HandleFunc("GET /users", s.page(s.users))
	mux.HandleFunc("GET /users/{user}", s.page(s.user))
	mux.HandleFunc("POST /users/{user}/{action}", s.page(s.userAction))
	mux.HandleFunc("GET /groups/{group}", s.page(s.group))
	mux.HandleFunc("POST /groups/{group}/members", s.page(s.addMember))
	mux.HandleFunc("POST /groups/{group}/join", s.page(s.askToJoin))
	mux.HandleFunc("POST /groups/{group}/edit", s.page(s.editGroup))
	mux.HandleFunc("POST /groups/{group}/members/{member}/remove", s.page(s.removeMember))
	mux.HandleFunc("GET /requests", s.page(s.requests))
	mux.HandleFunc("GET /requests/{id}", s.page(s.request))
	mux.HandleFunc("POST /requests/{id}/{verdict}", s.page(s.decide))
	mux.HandleFunc("GET /audit", s.page(s.auditList))
	// Each area of the portal registers its own pages (directory.go, delegation.go, evidence.go).
	s.registerDirectory(mux)
	s.registerDelegation(mux)
	s.registerEvidence(mux)
}

// view is what every page template gets: the signed-in person, the CSRF token for forms, a
// flash message, and the page's own data.
type view struct {
	Title   string
	Me      delegation.Actor
	CSRF    string
	Flash   string
	Problem *problemView
	Data    any
}

// problemView explains a refused or failed action in plain words.
type problemView struct {
	Title, Detail, Code string
	Event               int64
}

// ctx is a signed-in request.
type ctx struct {
	w       http.ResponseWriter
	r       *http.Request
	me      delegation.Actor
	session *credential.Session
}

// page wraps a handler that needs a session: without one it sends the browser to sign in; a
// session that must change its password first only reaches that page; a form post must carry
// the session's CSRF token.
func (s *Server) page(h func(c *ctx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me, sess, err := s.Auth.SessionOf(r)
		if err != nil {
			http.Redirect(w, r, "/sign-in?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !authn.CSRFMatches(r.PostFormValue("csrf_token"), sess) {
			http.Error(w, "this form is stale or was not sent from the portal: go back and send it again", http.StatusForbidden)
			return
		}
		switch {
		case sess.Restricted == credential.RestrictChangePassword && r.URL.Path != "/password" && r.URL.Path != "/sign-out":
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		case sess.Restricted == credential.RestrictEnrolMFA && !strings.HasPrefix(r.URL.Path, "/mfa") && r.URL.Path != "/sign-out":
			http.Redirect(w, r, "/mfa", http.StatusSeeOther)
			return
		}
		h(&ctx{w: w, r: r, me: me, session: sess})
	}
}

// render writes a page.
func (s *Server) render(c *ctx, status int, page, title string, data any, problem *problemView) {
	v := view{Title: title, Data: data, Problem: problem, Flash: c.r.URL.Query().Get("done")}
	if c.session != nil {
		v.Me, v.CSRF = c.me, c.session.CSRF
	}
	t := s.pages[page]
	c.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	c.w.Header().Set("Cache-Control", "no-store")
	// The portal runs no script and loads nothing from elsewhere: say so, so that an injected
	// script or style could not run, and no other site may frame or receive a form of it.
	c.w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	c.w.WriteHeader(status)
	if err := t.Execute(c.w, v); err != nil {
		s.Log.ErrorContext(c.r.Context(), "web: render", "page", page, "err", err)
	}
}

// contentSecurityPolicy is every portal page's: its own stylesheet and images, no script.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// fail renders the page that explains an error: the reason code in plain words, and which right
// would be needed.
func (s *Server) fail(c *ctx, err error) {
	p := httpx.ProblemFor(err)
	pv := &problemView{Title: p.Title, Detail: p.Detail, Code: p.Code}
	if p.Event != nil {
		pv.Event = *p.Event
	}
	if why, ok := reasons[p.Code]; ok {
		pv.Title = why
	}
	var pending *change.PendingError
	if errors.As(err, &pending) {
		http.Redirect(c.w, c.r, "/requests/"+pending.Request+"?done="+url.QueryEscape("Sent for approval"), http.StatusSeeOther)
		return
	}
	if p.Status >= 500 {
		s.Log.ErrorContext(c.r.Context(), "web: action failed", "path", c.r.URL.Path, "err", err)
	}
	s.render(c, p.Status, "problem", pv.Title, nil, pv)
}

// reasons are the refusals in plain words.
var reasons = map[string]string{
	delegation.ReasonNotAuthorized:  "None of your roles allows this here",
	delegation.ReasonProtected:      "This is a protected object: only a tier-0 admin may change it",
	delegation.ReasonEscalation:     "This person holds rights you do not: changing this could take them over",
	delegation.ReasonSelfEscalation: "You cannot change your own rights",
	delegation.ReasonExceedsGrant:   "You can only grant part of what you may pass on",
	delegation.ReasonVerification:   "Verify the person's identity first",
	delegation.ReasonActorInactive:  "Your account is not active",
	"separation_of_duties":          "Someone else must decide this: separation of duties",
	"not_approver":                  "You are not an approver of this request",
	"request_closed":                "This request is already decided",
	"stale_version":                 "Someone changed this meanwhile: reload and try again",
	"invalid":                       "Some of what you entered is not right",
	"not_found":                     "There is no such thing, or you may not see it",
	"step_up_required":              "Enter a current code from your authenticator first",
	"mfa_enrolment_required":        "Turn on an authenticator first (Your authenticator, at /mfa)",
	"bad_mfa_code":                  "That code from your authenticator is not right",
}

// stepUp makes sure the signed-in person gave a second factor lately, before a takeover
// action or an activation: with the code their form carries (field "totp") when it has one.
func (s *Server) stepUp(c *ctx) error {
	if code := strings.TrimSpace(c.r.PostFormValue("totp")); code != "" {
		return s.Auth.StepUpSession(c.r, c.me, c.session, code) // a fresh factor, for this action
	}
	return s.Auth.CheckStepUp(c.r, c.me, c.session)
}

// stepUpNeed says what the form of such an action must ask for: "" (nothing), "code" (a
// current code from the person's authenticator) or "enrol" (an authenticator first).
func (s *Server) stepUpNeed(c *ctx) string {
	err := s.Auth.CheckStepUp(c.r, c.me, c.session)
	switch {
	case err == nil:
		return ""
	case httpx.ProblemFor(err).Code == "mfa_enrolment_required":
		return "enrol"
	}
	return "code"
}
