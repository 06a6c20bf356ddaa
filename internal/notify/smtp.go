package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// smtpConfig is the mail settings, parsed once.
type smtpConfig struct {
	addr, host     string        // host:port, and the host alone (TLS name, AUTH check)
	from           *mail.Address // the sender, cleaned
	fromErr        error         // why SMTPFrom is unusable
	user, password string
	tls            *tls.Config // nil: verify the server's certificate for host against the system roots
	helo           string
}

func newSMTPConfig(opts Options) smtpConfig {
	c := smtpConfig{user: opts.SMTPUser, password: opts.SMTPPassword, helo: "localhost"}
	if opts.SMTPAddr != "" {
		c.addr = opts.SMTPAddr
		host, _, err := net.SplitHostPort(c.addr)
		if err != nil {
			host, c.addr = c.addr, net.JoinHostPort(c.addr, "25")
		}
		c.host = host
	}
	from := opts.SMTPFrom
	if clean(from) == "" {
		from = defaultFrom
	}
	a, err := mail.ParseAddress(clean(from))
	if err != nil {
		c.fromErr = fmt.Errorf("notify: sender address %q: %w", clean(from), err)
		return c
	}
	if a.Name == "" {
		a.Name = "Deputy"
	}
	c.from = a
	return c
}

// sender returns the configured sender, or why it is unusable.
func (c *smtpConfig) sender() (*mail.Address, error) {
	return c.from, c.fromErr
}

// toSMTP sends one mail per recipient with an address that the relay has not accepted yet, on
// one connection. A recipient the relay refuses does not stop the others.
func (n *Notifier) toSMTP(ctx context.Context, m change.OutboxMessage, note change.Notification, users []directory.User,
	p *progress, log *slog.Logger) error {
	type mailTo struct {
		user directory.User
		addr string
	}
	var todo []mailTo
	for _, u := range users {
		if p.done["smtp:"+u.ID] {
			continue
		}
		if addr, ok := mailbox(ctx, u, "smtp", log); ok {
			todo = append(todo, mailTo{u, addr})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	from, err := n.smtp.sender()
	if err != nil {
		return err
	}
	c, done, err := n.dialSMTP(ctx)
	if err != nil {
		return err
	}
	defer done()
	var errs []error
	for _, t := range todo {
		err := sendMail(c, from.Address, t.addr, n.compose(m, note, t.user, t.addr, from))
		if err == nil {
			p.done["smtp:"+t.user.ID] = true
			continue
		}
		errs = append(errs, fmt.Errorf("notify: smtp: user %s: %w", t.user.ID, err))
		var reply *textproto.Error
		if !errors.As(err, &reply) || c.Reset() != nil {
			break // the connection is gone: the rest wait for the next attempt
		}
	}
	if err := c.Quit(); err != nil {
		log.DebugContext(ctx, "notify: smtp quit", "err", err) // what was sent was accepted
	}
	return errors.Join(errs...)
}

// dialSMTP connects to the relay, says hello, starts TLS when offered and authenticates when
// configured. Until done is called, the connection is closed when ctx ends; it is closed anyway
// after sendTimeout. done closes the connection.
func (n *Notifier) dialSMTP(ctx context.Context) (c *smtp.Client, done func(), err error) {
	cfg := &n.smtp
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, sendTimeout)
	conn, err := d.DialContext(dctx, "tcp", cfg.addr)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("notify: smtp: %w", err)
	}
	deadline := time.Now().Add(sendTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	done = func() { stop(); conn.Close() }
	if c, err = smtp.NewClient(conn, cfg.host); err == nil {
		err = setupSMTP(c, cfg)
	}
	if err != nil {
		done()
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return nil, nil, fmt.Errorf("notify: smtp: %w", err)
	}
	return c, done, nil
}

// setupSMTP says hello, upgrades to TLS when the server offers it, and authenticates.
func setupSMTP(c *smtp.Client, cfg *smtpConfig) error {
	if err := c.Hello(cfg.helo); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := cfg.tls
		if tc == nil {
			tc = &tls.Config{ServerName: cfg.host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if cfg.user == "" {
		return nil
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return errors.New("credentials are configured but the server offers no AUTH; not sending")
	}
	// PlainAuth refuses to send the password unencrypted to anything but localhost.
	if err := c.Auth(smtp.PlainAuth("", cfg.user, cfg.password, cfg.host)); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// sendMail sends one message in the open session.
func sendMail(c *smtp.Client, from, to string, msg []byte) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
