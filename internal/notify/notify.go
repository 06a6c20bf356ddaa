// Package notify delivers the notifications the change pipeline enqueues on the outbox (topic
// "notify": approvals needed, reminders, escalations, decisions, break-glass reviews) by mail
// (SMTP, or .eml files in a directory for demos and tests) and to a webhook.
//
// Delivery is at least once: a message is marked delivered only when every configured channel
// accepted it for every recipient it has; until then it is retried with back-off, never
// dropped. Within one process a channel that already accepted a recipient is not sent to again
// on a retry; after a restart it may be (the mail directory's file names are stable, so a
// repeated file replaces the first). The package reads the outbox through Source, which
// *store.Store implements.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Topic is the outbox topic the pipeline enqueues notifications on.
const Topic = "notify"

// Defaults.
const (
	// DefaultInterval is the polling interval when Options.Interval is not positive.
	DefaultInterval = 15 * time.Second
	// maxBackoff caps the wait before retrying a failing message.
	maxBackoff = 15 * time.Minute
	// batch is how many undelivered messages one poll reads.
	batch = 100
	// sendTimeout bounds one channel's delivery of one message.
	sendTimeout = time.Minute
)

// Source is what the notifier needs of the store: the undelivered notifications, their
// bookkeeping, and the recipients' users. *store.Store implements it.
type Source interface {
	// Undelivered returns up to limit undelivered messages of topic, in ID order.
	Undelivered(ctx context.Context, topic string, limit int) ([]change.OutboxMessage, error)
	// MarkDelivered records that message id was delivered at at.
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	// MarkAttempt counts a failed delivery attempt of message id.
	MarkAttempt(ctx context.Context, id int64) error
	// User returns the user ref names; an error matching directory.ErrNotFound when there is
	// none.
	User(ctx context.Context, ref directory.Ref) (directory.User, error)
}

// Options configure the channels. A channel is on when its address is set; any combination may
// be on at once.
type Options struct {
	// SMTPAddr is the mail relay as host:port (port 25 when missing). STARTTLS is used when
	// the server offers it.
	SMTPAddr string
	// SMTPFrom is the sender address (default deputy@localhost); it is also the envelope sender.
	SMTPFrom string
	// SMTPUser and SMTPPassword, when SMTPUser is set, authenticate with AUTH PLAIN, which
	// net/smtp only sends over TLS or to localhost.
	SMTPUser     string
	SMTPPassword string
	// MailDir, when set, receives one RFC 5322 .eml file per recipient (created 0700).
	MailDir string
	// Webhook, when set, is POSTed each notification as JSON; a 2xx answer accepts it.
	Webhook string
	// BaseURL, when set, is the server's external URL; mails link the request under it.
	BaseURL string
	// Interval is how often the outbox is polled (DefaultInterval when not positive). It is
	// also the first retry's back-off, which doubles up to 15 minutes.
	Interval time.Duration
}

// Validate reports the first option that cannot work: a sender that is not one address, a
// webhook or base URL that is not an absolute http(s) URL, a negative interval. New accepts
// any options (an unusable channel fails each attempt, and says why); call Validate at start.
// Its errors never repeat the webhook URL, which may hold a secret.
func (o Options) Validate() error {
	if o.SMTPFrom != "" {
		if _, err := mail.ParseAddress(o.SMTPFrom); err != nil || clean(o.SMTPFrom) != o.SMTPFrom {
			return fmt.Errorf("notify: sender %q is not one mail address", clean(o.SMTPFrom))
		}
	}
	if o.Webhook != "" && !isHTTPURL(o.Webhook) {
		return errors.New("notify: the webhook must be an absolute http or https URL")
	}
	if o.BaseURL != "" && !isHTTPURL(o.BaseURL) {
		return fmt.Errorf("notify: base URL %q must be an absolute http or https URL", clean(o.BaseURL))
	}
	if o.Interval < 0 {
		return fmt.Errorf("notify: interval %s is negative", o.Interval)
	}
	return nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Notifier delivers the outbox's notifications through the configured channels. Run it once per
// database: two notifiers on one database would both deliver every message.
type Notifier struct {
	src   Source
	opts  Options
	log   *slog.Logger
	http  *http.Client
	now   func() time.Time
	smtp  smtpConfig
	state map[int64]*progress // the messages that failed, by ID; only Run's goroutine uses it
}

// progress is what the notifier remembers of a message that is not delivered yet.
type progress struct {
	done     map[string]bool // channel:recipient keys that accepted it
	attempts int
	next     time.Time // not retried before
}

// New returns a notifier reading src and delivering through the channels opts configures. A nil
// log discards.
func New(src Source, opts Options, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	opts.BaseURL = strings.TrimRight(strings.TrimSpace(opts.BaseURL), "/")
	return &Notifier{src: src, opts: opts, log: log,
		http: &http.Client{Timeout: 30 * time.Second,
			// A redirect is not an acceptance: a POST followed as a GET would deliver nothing.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now:   time.Now,
		smtp:  newSMTPConfig(opts),
		state: map[int64]*progress{}}
}

// Enabled reports whether any channel is configured; a notifier with none delivers nothing and
// need not run.
func (n *Notifier) Enabled() bool {
	return n.opts.SMTPAddr != "" || n.opts.MailDir != "" || n.opts.Webhook != ""
}

// Run polls the outbox at once and then every interval, delivering what it finds, until ctx
// ends. It returns nothing: failures are logged and retried.
func (n *Notifier) Run(ctx context.Context) {
	if !n.Enabled() {
		return
	}
	tick := time.NewTicker(n.opts.Interval)
	defer tick.Stop()
	for {
		n.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// poll delivers the undelivered messages that are due, and returns how many it delivered.
func (n *Notifier) poll(ctx context.Context) int {
	msgs, err := n.src.Undelivered(ctx, Topic, batch)
	if err != nil {
		if ctx.Err() == nil {
			n.log.WarnContext(ctx, "notify: read outbox", "err", err)
		}
		return 0
	}
	seen := make(map[int64]bool, len(msgs))
	delivered := 0
	for _, m := range msgs {
		if ctx.Err() != nil {
			break
		}
		seen[m.ID] = true
		p := n.state[m.ID]
		if p != nil && n.now().Before(p.next) {
			continue
		}
		if p == nil {
			p = &progress{done: map[string]bool{}, attempts: m.Attempts}
		}
		if n.handle(ctx, m, p) {
			delivered++
		}
	}
	for id := range n.state {
		if !seen[id] {
			delete(n.state, id) // delivered, or past this batch: start afresh when seen again
		}
	}
	return delivered
}

// handle delivers one message and records the outcome; it reports whether it was delivered.
func (n *Notifier) handle(ctx context.Context, m change.OutboxMessage, p *progress) bool {
	log := n.log.With("message_id", m.ID)
	var note change.Notification
	err := json.Unmarshal(m.Payload, &note)
	if err != nil {
		// It cannot get better by itself, but it is never dropped: it waits, with its attempts
		// counted, for someone to look.
		err = fmt.Errorf("notify: decode the notification: %w", err)
	} else {
		log = log.With("kind", clean(note.Kind), "request", clean(note.Request))
		err = n.deliver(ctx, m, note, p, log)
	}
	if err == nil {
		if merr := n.src.MarkDelivered(ctx, m.ID, n.now()); merr != nil {
			// Delivered, but the outbox does not know it yet: the next poll retries, and the
			// channels that accepted are not sent to again.
			log.WarnContext(ctx, "notify: mark delivered", "err", merr)
			n.state[m.ID] = p
			return false
		}
		delete(n.state, m.ID)
		log.DebugContext(ctx, "notify: delivered")
		return true
	}
	if ctx.Err() != nil {
		n.state[m.ID] = p // shutting down: the attempt was cut short, not failed
		return false
	}
	p.attempts++
	wait := backoff(n.opts.Interval, p.attempts)
	p.next = n.now().Add(wait)
	n.state[m.ID] = p
	if merr := n.src.MarkAttempt(ctx, m.ID); merr != nil {
		log.WarnContext(ctx, "notify: count attempt", "err", merr)
	}
	log.WarnContext(ctx, "notify: delivery failed; will retry", "attempts", p.attempts, "retry_in", wait.String(), "err", err)
	return false
}

// backoff is the wait before retrying after attempts failures: interval, doubling, capped.
func backoff(interval time.Duration, attempts int) time.Duration {
	wait := interval
	for i := 1; i < attempts && wait < maxBackoff; i++ {
		wait *= 2
	}
	return min(wait, max(maxBackoff, interval))
}

// deliver sends m (notification note) through every configured channel that has not accepted
// it yet, recording in p what each accepts. An error means some channel did not accept it for
// some recipient.
func (n *Notifier) deliver(ctx context.Context, m change.OutboxMessage, note change.Notification, p *progress,
	log *slog.Logger) error {
	users, err := n.recipients(ctx, note.To, log)
	if err != nil {
		return err
	}
	var errs []error
	if n.opts.MailDir != "" {
		errs = append(errs, n.toMailDir(ctx, m, note, users, p, log))
	}
	if n.opts.SMTPAddr != "" {
		errs = append(errs, n.toSMTP(ctx, m, note, users, p, log))
	}
	if n.opts.Webhook != "" && !p.done["webhook"] {
		err := n.toWebhook(ctx, m, note, users)
		if err == nil {
			p.done["webhook"] = true
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// recipients resolves the user IDs of a notification, once each, in order. A user that no
// longer exists is skipped: there is no one left to tell.
func (n *Notifier) recipients(ctx context.Context, ids []string, log *slog.Logger) ([]directory.User, error) {
	var out []directory.User
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		u, err := n.src.User(ctx, directory.Ref{Kind: directory.KindUser, ID: id})
		if errors.Is(err, directory.ErrNotFound) {
			log.InfoContext(ctx, "notify: recipient no longer exists; skipped", "user_id", clean(id))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notify: resolve recipient %s: %w", clean(id), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// requestURL is the link to the request, or "" without a base URL.
func (n *Notifier) requestURL(request string) string {
	if n.opts.BaseURL == "" || request == "" {
		return ""
	}
	return n.opts.BaseURL + "/api/v1/requests/" + url.PathEscape(request)
}
