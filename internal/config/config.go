// Package config holds Deputy's server configuration. Each setting comes from, in order of
// precedence: a command-line flag, a DEPUTY_* environment variable, a JSON config file, and a
// default. There are no globals: Resolve returns a value that is passed on.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config is the server's configuration.
type Config struct {
	// DataDir holds the SQLite database (unless DatabaseURL is set) and the audit signing key.
	DataDir string `json:"data"`
	// Addr is the HOST:PORT the server listens on.
	Addr string `json:"addr"`
	// DatabaseURL selects PostgreSQL when it is a postgres:// URL; empty means SQLite in DataDir.
	DatabaseURL string `json:"database_url"`
	// SigningKey is the path of the audit signing key; default DataDir/audit-signing.key.
	SigningKey string `json:"signing_key"`
	// CheckpointFile is where signed checkpoints are appended, outside the database; default
	// DataDir/audit-checkpoints.
	CheckpointFile string `json:"checkpoint_file"`
	// CheckpointEvery and CheckpointInterval say when a checkpoint is signed: after this many new
	// events, and at least this often while the log grows (a Go duration such as 1m).
	CheckpointEvery    string `json:"checkpoint_every"`
	CheckpointInterval string `json:"checkpoint_interval"`
	// AuditWebhook and AuditSyslog, when set, receive every audit event: NDJSON POSTs to a URL,
	// RFC 5424 messages over TCP to HOST:PORT.
	AuditWebhook string `json:"audit_webhook"`
	AuditSyslog  string `json:"audit_syslog"`
	// Policies is a YAML or JSON file of approval policies that replaces the stored set at
	// start; empty keeps the stored set (the shipped defaults on a new installation).
	Policies string `json:"policies"`
	// ApprovalSweep is how often open requests are checked for expiry, escalation and
	// reminders (a Go duration).
	ApprovalSweep string `json:"approval_sweep"`
	// Notifications about requests: by mail over SMTP (SMTPAddr HOST:PORT, SMTPFrom, and
	// optional PLAIN credentials), into MailDir as .eml files (demo mode), and to NotifyWebhook.
	// BaseURL is how people reach this server, for links in them.
	SMTPAddr      string `json:"smtp_addr"`
	SMTPFrom      string `json:"smtp_from"`
	SMTPUser      string `json:"smtp_user"`
	SMTPPassword  string `json:"smtp_password"`
	MailDir       string `json:"mail_dir"`
	NotifyWebhook string `json:"notify_webhook"`
	BaseURL       string `json:"base_url"`
	// Rules is a YAML or JSON file of HR lifecycle rules that replaces the stored set at start.
	Rules string `json:"rules"`
	// HRTimezone is the IANA time zone HR dates are in ("today" for start and end dates).
	HRTimezone string `json:"hr_timezone"`
	// HRSweep is how often scheduled lifecycle work runs (leavers at their end date, deletions
	// after retention), a Go duration; 0 turns it off.
	HRSweep string `json:"hr_sweep"`
	// TLSCert and TLSKey, both set, serve HTTPS (and mark session cookies Secure).
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// TrustedProxies lists the reverse proxies (addresses or CIDR prefixes, comma-separated)
	// whose X-Forwarded-For names the client: for sign-in throttling and the audit trail.
	TrustedProxies string `json:"trusted_proxies"`
	// OIDC sign-in, on when OIDCIssuer is set: the provider's issuer URL, this server's client ID
	// and secret there, the callback URL registered with it (default BaseURL +
	// /api/v1/auth/oidc/callback) and the ID-token claim that holds the Deputy username.
	OIDCIssuer        string `json:"oidc_issuer"`
	OIDCClientID      string `json:"oidc_client_id"`
	OIDCClientSecret  string `json:"oidc_client_secret"`
	OIDCRedirectURL   string `json:"oidc_redirect_url"`
	OIDCUsernameClaim string `json:"oidc_username_claim"`
	// Sign-in limits (Go durations and counts; empty: the defaults): sessions end after
	// SessionIdle without use and SessionMax after sign-in; LockoutAfter failed sign-ins within
	// 15 minutes lock an account for LockoutFor; service-account keys live at most KeyMaxDays.
	SessionIdle  string `json:"session_idle"`
	SessionMax   string `json:"session_max"`
	LockoutAfter string `json:"lockout_after"`
	LockoutFor   string `json:"lockout_for"`
	KeyMaxDays   string `json:"key_max_days"`
	// StepUpWindow is how recent a second factor must be before a takeover action or an
	// activation (0s: every time).
	StepUpWindow string `json:"step_up_window"`
	// MFA is "required" (the default: anyone who holds a role assignment enrols a second factor
	// before their session may do anything else) or "optional".
	MFA string `json:"mfa"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `json:"log_level"`
	LogFormat string `json:"log_format"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for requests in flight.
	ShutdownTimeout time.Duration `json:"-"`
}

// setting binds one Config field to its flag, environment variable and default.
type setting struct {
	flag, env, def string
	field          func(c *Config) *string
}

var settings = []setting{
	{"data", "DEPUTY_DATA", "./deputy-data", func(c *Config) *string { return &c.DataDir }},
	{"addr", "DEPUTY_ADDR", "127.0.0.1:8080", func(c *Config) *string { return &c.Addr }},
	{"database-url", "DEPUTY_DATABASE_URL", "", func(c *Config) *string { return &c.DatabaseURL }},
	{"signing-key", "DEPUTY_SIGNING_KEY", "", func(c *Config) *string { return &c.SigningKey }},
	{"checkpoint-file", "DEPUTY_CHECKPOINT_FILE", "", func(c *Config) *string { return &c.CheckpointFile }},
	{"checkpoint-every", "DEPUTY_CHECKPOINT_EVERY", "1000", func(c *Config) *string { return &c.CheckpointEvery }},
	{"checkpoint-interval", "DEPUTY_CHECKPOINT_INTERVAL", "1m", func(c *Config) *string { return &c.CheckpointInterval }},
	{"audit-webhook", "DEPUTY_AUDIT_WEBHOOK", "", func(c *Config) *string { return &c.AuditWebhook }},
	{"audit-syslog", "DEPUTY_AUDIT_SYSLOG", "", func(c *Config) *string { return &c.AuditSyslog }},
	{"policies", "DEPUTY_POLICIES", "", func(c *Config) *string { return &c.Policies }},
	{"approval-sweep", "DEPUTY_APPROVAL_SWEEP", "30s", func(c *Config) *string { return &c.ApprovalSweep }},
	{"smtp-addr", "DEPUTY_SMTP_ADDR", "", func(c *Config) *string { return &c.SMTPAddr }},
	{"smtp-from", "DEPUTY_SMTP_FROM", "deputy@localhost", func(c *Config) *string { return &c.SMTPFrom }},
	{"smtp-user", "DEPUTY_SMTP_USER", "", func(c *Config) *string { return &c.SMTPUser }},
	{"smtp-password", "DEPUTY_SMTP_PASSWORD", "", func(c *Config) *string { return &c.SMTPPassword }},
	{"mail-dir", "DEPUTY_MAIL_DIR", "", func(c *Config) *string { return &c.MailDir }},
	{"notify-webhook", "DEPUTY_NOTIFY_WEBHOOK", "", func(c *Config) *string { return &c.NotifyWebhook }},
	{"base-url", "DEPUTY_BASE_URL", "", func(c *Config) *string { return &c.BaseURL }},
	{"rules", "DEPUTY_RULES", "", func(c *Config) *string { return &c.Rules }},
	{"hr-timezone", "DEPUTY_HR_TIMEZONE", "UTC", func(c *Config) *string { return &c.HRTimezone }},
	{"hr-sweep", "DEPUTY_HR_SWEEP", "1h", func(c *Config) *string { return &c.HRSweep }},
	{"tls-cert", "DEPUTY_TLS_CERT", "", func(c *Config) *string { return &c.TLSCert }},
	{"tls-key", "DEPUTY_TLS_KEY", "", func(c *Config) *string { return &c.TLSKey }},
	{"trusted-proxies", "DEPUTY_TRUSTED_PROXIES", "", func(c *Config) *string { return &c.TrustedProxies }},
	{"mfa", "DEPUTY_MFA", "required", func(c *Config) *string { return &c.MFA }},
	{"session-idle", "DEPUTY_SESSION_IDLE", "30m", func(c *Config) *string { return &c.SessionIdle }},
	{"step-up-window", "DEPUTY_STEP_UP_WINDOW", "5m", func(c *Config) *string { return &c.StepUpWindow }},
	{"session-max", "DEPUTY_SESSION_MAX", "12h", func(c *Config) *string { return &c.SessionMax }},
	{"lockout-after", "DEPUTY_LOCKOUT_AFTER", "10", func(c *Config) *string { return &c.LockoutAfter }},
	{"lockout-for", "DEPUTY_LOCKOUT_FOR", "15m", func(c *Config) *string { return &c.LockoutFor }},
	{"key-max-days", "DEPUTY_KEY_MAX_DAYS", "366", func(c *Config) *string { return &c.KeyMaxDays }},
	{"oidc-issuer", "DEPUTY_OIDC_ISSUER", "", func(c *Config) *string { return &c.OIDCIssuer }},
	{"oidc-client-id", "DEPUTY_OIDC_CLIENT_ID", "", func(c *Config) *string { return &c.OIDCClientID }},
	{"oidc-client-secret", "DEPUTY_OIDC_CLIENT_SECRET", "", func(c *Config) *string { return &c.OIDCClientSecret }},
	{"oidc-redirect-url", "DEPUTY_OIDC_REDIRECT_URL", "", func(c *Config) *string { return &c.OIDCRedirectURL }},
	{"oidc-username-claim", "DEPUTY_OIDC_USERNAME_CLAIM", "preferred_username", func(c *Config) *string { return &c.OIDCUsernameClaim }},
	{"log-level", "DEPUTY_LOG_LEVEL", "info", func(c *Config) *string { return &c.LogLevel }},
	{"log-format", "DEPUTY_LOG_FORMAT", "text", func(c *Config) *string { return &c.LogFormat }},
}

var usage = map[string]string{
	"data":                "directory for the SQLite database and the audit signing key (env DEPUTY_DATA)",
	"addr":                "HOST:PORT to listen on (env DEPUTY_ADDR)",
	"database-url":        "postgres:// URL to use PostgreSQL instead of SQLite (env DEPUTY_DATABASE_URL)",
	"signing-key":         "path of the audit signing key (env DEPUTY_SIGNING_KEY; default DATA/audit-signing.key)",
	"checkpoint-file":     "file signed audit checkpoints are appended to (env DEPUTY_CHECKPOINT_FILE; default DATA/audit-checkpoints)",
	"checkpoint-every":    "sign an audit checkpoint after this many new events (env DEPUTY_CHECKPOINT_EVERY)",
	"checkpoint-interval": "and at least this often while the log grows, such as 1m (env DEPUTY_CHECKPOINT_INTERVAL)",
	"audit-webhook":       "URL that receives every audit event as NDJSON POSTs (env DEPUTY_AUDIT_WEBHOOK)",
	"audit-syslog":        "HOST:PORT that receives every audit event as RFC 5424 syslog over TCP (env DEPUTY_AUDIT_SYSLOG)",
	"policies":            "YAML or JSON file of approval policies that replaces the stored ones at start (env DEPUTY_POLICIES)",
	"approval-sweep":      "how often open approval requests are checked for expiry, escalation and reminders (env DEPUTY_APPROVAL_SWEEP)",
	"smtp-addr":           "HOST:PORT of the SMTP server that mails approval notifications (env DEPUTY_SMTP_ADDR)",
	"smtp-from":           "sender address of notification mails (env DEPUTY_SMTP_FROM)",
	"smtp-user":           "SMTP user name, when the server wants one (env DEPUTY_SMTP_USER)",
	"smtp-password":       "SMTP password; prefer the environment variable DEPUTY_SMTP_PASSWORD to this flag",
	"mail-dir":            "directory notification mails are written to as .eml files instead of sent (env DEPUTY_MAIL_DIR; demo: DATA/mail)",
	"notify-webhook":      "URL that receives approval notifications as JSON POSTs (env DEPUTY_NOTIFY_WEBHOOK)",
	"base-url":            "URL people reach this server at, for links in notifications (env DEPUTY_BASE_URL)",
	"rules":               "YAML or JSON file of HR lifecycle rules that replaces the stored ones at start (env DEPUTY_RULES)",
	"hr-timezone":         "IANA time zone of HR start and end dates, such as Europe/Berlin (env DEPUTY_HR_TIMEZONE)",
	"hr-sweep":            "how often scheduled HR work runs: leavers at their end date, deletions after retention; 0 turns it off (env DEPUTY_HR_SWEEP)",
	"tls-cert":            "certificate file (PEM) to serve HTTPS with; needs --tls-key (env DEPUTY_TLS_CERT)",
	"tls-key":             "private key file (PEM) of --tls-cert (env DEPUTY_TLS_KEY)",
	"trusted-proxies":     "reverse proxies (IP addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client (env DEPUTY_TRUSTED_PROXIES)",
	"session-idle":        "a session ends after this long without use (env DEPUTY_SESSION_IDLE)",
	"step-up-window":      "how recent a second factor must be before a password reset, an authenticator's removal or an activation; 0s asks every time (env DEPUTY_STEP_UP_WINDOW)",
	"session-max":         "and at the latest this long after sign-in (env DEPUTY_SESSION_MAX)",
	"lockout-after":       "failed sign-ins within 15 minutes that lock an account (env DEPUTY_LOCKOUT_AFTER)",
	"lockout-for":         "how long a lockout lasts before it lifts by itself (env DEPUTY_LOCKOUT_FOR)",
	"key-max-days":        "the longest lifetime of a service account's API key, in days (env DEPUTY_KEY_MAX_DAYS)",
	"mfa":                 "required (holders of a role assignment must enrol TOTP before anything else) or optional (env DEPUTY_MFA)",
	"log-level":           "debug, info, warn or error (env DEPUTY_LOG_LEVEL)",
	"oidc-issuer":         "issuer URL of the OpenID provider to sign in with; empty turns OIDC sign-in off (env DEPUTY_OIDC_ISSUER)",
	"oidc-client-id":      "this server's client ID at the OpenID provider (env DEPUTY_OIDC_CLIENT_ID)",
	"oidc-client-secret":  "its client secret; prefer the environment variable DEPUTY_OIDC_CLIENT_SECRET to this flag",
	"oidc-redirect-url":   "callback URL registered at the provider (env DEPUTY_OIDC_REDIRECT_URL; default BASE-URL/api/v1/auth/oidc/callback)",
	"oidc-username-claim": "ID-token claim that holds the Deputy username (env DEPUTY_OIDC_USERNAME_CLAIM)",
	"log-format":          "text or json (env DEPUTY_LOG_FORMAT)",
}

// AddFlags registers the settings named (all when none are) on fs, plus --config.
func AddFlags(fs *pflag.FlagSet, names ...string) {
	fs.String("config", "", "JSON file with settings (env DEPUTY_CONFIG); flags and environment override it")
	for _, s := range settings {
		if len(names) == 0 || slices.Contains(names, s.flag) {
			fs.String(s.flag, s.def, usage[s.flag])
		}
	}
}

// Resolve builds the configuration from fs, the environment (getenv) and the config file.
func Resolve(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	var c Config
	path := getenv("DEPUTY_CONFIG")
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	for _, s := range settings {
		dst := s.field(&c)
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			*dst = f.Value.String()
		} else if v := getenv(s.env); v != "" {
			*dst = v
		} else if *dst == "" {
			*dst = s.def
		}
	}
	if c.SigningKey == "" {
		c.SigningKey = filepath.Join(c.DataDir, "audit-signing.key")
	}
	if c.CheckpointFile == "" {
		c.CheckpointFile = filepath.Join(c.DataDir, "audit-checkpoints")
	}
	if c.OIDCIssuer != "" && c.OIDCRedirectURL == "" && c.BaseURL != "" {
		c.OIDCRedirectURL = strings.TrimSuffix(c.BaseURL, "/") + "/api/v1/auth/oidc/callback"
	}
	c.ShutdownTimeout = 15 * time.Second
	return c, c.Validate()
}

// Validate checks the configuration and says what to fix.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("config: data: a data directory is required"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("config: addr %q: want HOST:PORT, such as 127.0.0.1:8080", c.Addr))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("config: database-url: only postgres:// URLs are supported; leave it empty for SQLite"))
	}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.Checkpoints(); err != nil {
		errs = append(errs, err)
	}
	if c.AuditWebhook != "" {
		if u, err := url.Parse(c.AuditWebhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("config: audit-webhook %q: want an http:// or https:// URL", c.AuditWebhook))
		}
	}
	if c.AuditSyslog != "" {
		if _, _, err := net.SplitHostPort(c.AuditSyslog); err != nil {
			errs = append(errs, fmt.Errorf("config: audit-syslog %q: want HOST:PORT", c.AuditSyslog))
		}
	}
	if _, err := c.Sweep(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Timezone(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.LifecycleSweep(); err != nil {
		errs = append(errs, err)
	}
	for name, u := range map[string]string{"notify-webhook": c.NotifyWebhook, "base-url": c.BaseURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("config: %s %q: want an http:// or https:// URL", name, u))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("config: tls-cert and tls-key go together"))
	}
	if _, err := c.SignIn(); err != nil {
		errs = append(errs, err)
	}
	if c.MFA != "" && c.MFA != "required" && c.MFA != "optional" {
		errs = append(errs, fmt.Errorf("config: mfa %q: want required or optional", c.MFA))
	}
	if _, err := c.Proxies(); err != nil {
		errs = append(errs, err)
	}
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("config: smtp-addr %q: want HOST:PORT", c.SMTPAddr))
		}
	}
	if c.SMTPFrom != "" && c.SMTPAddr != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			errs = append(errs, fmt.Errorf("config: smtp-from %q: want an email address", c.SMTPFrom))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("config: log-format %q: want text or json", c.LogFormat))
	}
	errs = append(errs, c.oidcErrors()...)
	return errors.Join(errs...)
}

// oidcErrors checks the OIDC settings: with an issuer, a client ID and a redirect URL are
// required, and both URLs must be https:// (http:// only to localhost, for a test provider).
func (c Config) oidcErrors() []error {
	var errs []error
	for _, s := range [][2]string{{"oidc-issuer", c.OIDCIssuer}, {"oidc-redirect-url", c.OIDCRedirectURL}} {
		if s[1] != "" && !secureURL(s[1]) {
			errs = append(errs, fmt.Errorf("config: %s %q: want an https:// URL (http:// only to localhost or 127.0.0.1)", s[0], s[1]))
		}
	}
	if c.OIDCIssuer == "" {
		return errs
	}
	if c.OIDCClientID == "" {
		errs = append(errs, errors.New("config: oidc-client-id: required with oidc-issuer"))
	}
	if c.OIDCRedirectURL == "" {
		errs = append(errs, errors.New("config: oidc-redirect-url: required with oidc-issuer (or set base-url)"))
	}
	if c.OIDCUsernameClaim == "" {
		errs = append(errs, errors.New("config: oidc-username-claim: required with oidc-issuer"))
	}
	return errs
}

// secureURL reports whether u is an https:// URL, or an http:// one to this machine.
func secureURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || pu.User != nil {
		return false
	}
	switch pu.Scheme {
	case "https":
		return true
	case "http":
		h := pu.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// Checkpoints parses CheckpointEvery and CheckpointInterval (empty means the defaults).
func (c Config) Checkpoints() (every uint64, interval time.Duration, err error) {
	every, interval = 1000, time.Minute
	if c.CheckpointEvery != "" {
		if every, err = strconv.ParseUint(c.CheckpointEvery, 10, 64); err != nil || every == 0 {
			return 0, 0, fmt.Errorf("config: checkpoint-every %q: want a positive number of events", c.CheckpointEvery)
		}
	}
	if c.CheckpointInterval != "" {
		if interval, err = time.ParseDuration(c.CheckpointInterval); err != nil || interval < time.Second {
			return 0, 0, fmt.Errorf("config: checkpoint-interval %q: want a duration of at least 1s, such as 1m", c.CheckpointInterval)
		}
	}
	return every, interval, nil
}

// Sweep parses ApprovalSweep (empty means 30s).
func (c Config) Sweep() (time.Duration, error) {
	if c.ApprovalSweep == "" {
		return 30 * time.Second, nil
	}
	d, err := time.ParseDuration(c.ApprovalSweep)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("config: approval-sweep %q: want a duration of at least 1s, such as 30s", c.ApprovalSweep)
	}
	return d, nil
}

// SignInLimits are the parsed sign-in settings (zero: the default).
type SignInLimits struct {
	SessionIdle, SessionMax, LockoutFor time.Duration
	LockoutAfter, KeyMaxDays            int
	// StepUpWindow is zero for the default; "every time" (0s) is one nanosecond.
	StepUpWindow time.Duration
}

// SignIn parses the sign-in settings.
func (c Config) SignIn() (SignInLimits, error) {
	var l SignInLimits
	var errs []error
	dur := func(name, v string, dst *time.Duration) {
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			errs = append(errs, fmt.Errorf("config: %s %q: want a duration of at least 1m", name, v))
			return
		}
		*dst = d
	}
	num := func(name, v string, lo, hi int, dst *int) {
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("config: %s %q: want a number from %d to %d", name, v, lo, hi))
			return
		}
		*dst = n
	}
	dur("session-idle", c.SessionIdle, &l.SessionIdle)
	dur("session-max", c.SessionMax, &l.SessionMax)
	dur("lockout-for", c.LockoutFor, &l.LockoutFor)
	if c.StepUpWindow != "" {
		d, err := time.ParseDuration(c.StepUpWindow)
		switch {
		case err != nil || d < 0 || d > time.Hour:
			errs = append(errs, fmt.Errorf("config: step-up-window %q: want a duration from 0s to 1h", c.StepUpWindow))
		case d == 0:
			l.StepUpWindow = time.Nanosecond
		default:
			l.StepUpWindow = d
		}
	}
	num("lockout-after", c.LockoutAfter, 3, 1000, &l.LockoutAfter)
	num("key-max-days", c.KeyMaxDays, 1, 3650, &l.KeyMaxDays)
	return l, errors.Join(errs...)
}

// Timezone loads HRTimezone (empty means UTC).
func (c Config) Timezone() (*time.Location, error) {
	if c.HRTimezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(c.HRTimezone)
	if err != nil {
		return nil, fmt.Errorf("config: hr-timezone %q: want an IANA time zone such as Europe/Berlin", c.HRTimezone)
	}
	return loc, nil
}

// LifecycleSweep parses HRSweep (empty means 1h; 0 turns the sweep off).
func (c Config) LifecycleSweep() (time.Duration, error) {
	if c.HRSweep == "" {
		return time.Hour, nil
	}
	d, err := time.ParseDuration(c.HRSweep)
	if err != nil || (d != 0 && d < time.Minute) {
		return 0, fmt.Errorf("config: hr-sweep %q: want 0 or a duration of at least 1m, such as 1h", c.HRSweep)
	}
	return d, nil
}

// DSN is what the store opens: the PostgreSQL URL, or the SQLite file in the data directory.
func (c Config) DSN() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, "deputy.db")
}

// Level parses LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("config: log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// Logger builds the logger the configuration asks for, writing to w.
func (c Config) Logger(w io.Writer) *slog.Logger {
	level, _ := c.Level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Proxies parses TrustedProxies.
func (c Config) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.TrustedProxies, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("config: trusted-proxies: %q is neither an IP address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
