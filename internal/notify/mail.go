package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Mail limits and defaults.
const (
	defaultFrom    = "deputy@localhost"
	defaultSubject = "Deputy notification"
	maxSubject     = 200 // runes; keeps the header line well under RFC 5322's 998 characters
)

// clean makes s safe for one header line: every control character (CR and LF above all, which
// would start a new header) becomes a space, and the ends are trimmed.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// parseMailbox returns the bare address of a configured or stored mail address, cleaned.
func parseMailbox(s string) (string, error) {
	a, err := mail.ParseAddress(clean(s))
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

// mailbox returns u's address for mail, or false when u has none (or an unusable one).
func mailbox(ctx context.Context, u directory.User, channel string, log *slog.Logger) (string, bool) {
	if strings.TrimSpace(u.Email) == "" {
		log.DebugContext(ctx, "notify: recipient has no email; skipped for mail", "user_id", u.ID, "channel", channel)
		return "", false
	}
	addr, err := parseMailbox(u.Email)
	if err != nil {
		log.WarnContext(ctx, "notify: recipient's email is not an address; skipped for mail", "user_id", u.ID,
			"channel", channel, "err", err)
		return "", false
	}
	return addr, true
}

// reasons says, per kind, why the recipient receives the mail.
var reasons = map[string]string{
	"approval_needed": "You are one of its approvers.",
	"reminder":        "You are one of its approvers, and its approval is due soon.",
	"escalated":       "Its approvers did not decide in time, and it was escalated to you.",
	"decided":         "You submitted this request.",
	"break_glass":     "You are a tier-0 admin: a break-glass change waits for your review.",
}

// compose builds the RFC 5322 message of notification note (outbox message m) for u at addr,
// from from. Every header value is cleaned of line breaks; the body is quoted-printable UTF-8.
// The same inputs give the same bytes.
func (n *Notifier) compose(m change.OutboxMessage, note change.Notification, u directory.User, addr string,
	from *mail.Address) []byte {
	date := m.Created
	if date.IsZero() {
		date = n.now()
	}
	subject := truncate(clean(note.Subject), maxSubject)
	if subject == "" {
		subject = defaultSubject
	}
	request := clean(note.Request)
	domain := "localhost"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 && i+1 < len(from.Address) {
		domain = from.Address[i+1:]
	}

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", (&mail.Address{Name: clean(u.DisplayName), Address: addr}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("Date", date.UTC().Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<notify.%d.%s@%s>", m.ID, safeName(u.ID), safeName(domain)))
	header("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies, please
	if request != "" {
		header("X-Deputy-Request", safeName(request))
	}
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	name := clean(u.DisplayName)
	if name == "" {
		name = clean(u.Username)
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Hello %s,\n\n%s\n\n", name, subject)
	if request != "" {
		fmt.Fprintf(&body, "Request: %s\n", request)
	}
	if link := n.requestURL(request); link != "" {
		fmt.Fprintf(&body, "Link: %s\n", link)
	}
	if run := clean(note.Run); run != "" {
		fmt.Fprintf(&body, "HR run: %s\n", run)
	}
	if note.Body != "" {
		fmt.Fprintf(&body, "\n%s\n", cleanBody(note.Body))
	}
	if why := reasons[note.Kind]; why != "" {
		fmt.Fprintf(&body, "\n%s\n", why)
	}
	body.WriteString("\n-- \nDeputy (automatic message)\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(body.String())) // writes to a bytes.Buffer cannot fail
	qp.Close()
	return b.Bytes()
}

// safeName keeps the characters that are safe in a file name and a Message-ID; any other
// becomes "_".
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}

// mailFileName is the stable, sortable name of the .eml file of message m for user id: the
// message's creation time, its ID, the recipient.
func mailFileName(m change.OutboxMessage, userID string) string {
	return m.Created.UTC().Format("20060102T150405.000000Z") + "-" + fmt.Sprintf("%010d", m.ID) + "-" + safeName(userID) + ".eml"
}

// toMailDir writes one .eml file per recipient with an address that has none yet.
func (n *Notifier) toMailDir(ctx context.Context, m change.OutboxMessage, note change.Notification, users []directory.User,
	p *progress, log *slog.Logger) error {
	dir := n.opts.MailDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("notify: mail directory: %w", err)
	}
	from, err := n.smtp.sender()
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range users {
		key := "maildir:" + u.ID
		if p.done[key] {
			continue
		}
		addr, ok := mailbox(ctx, u, "maildir", log)
		if !ok {
			continue
		}
		if err := writeAtomic(dir, mailFileName(m, u.ID), n.compose(m, note, u, addr, from)); err != nil {
			errs = append(errs, fmt.Errorf("notify: mail directory: user %s: %w", u.ID, err))
			continue
		}
		p.done[key] = true
	}
	return errors.Join(errs...)
}

// writeAtomic writes data to dir/name (0600) through a temporary file and a rename, so a reader
// of the directory sees whole files only, and a rewrite replaces the file.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// cleanBody keeps a notification's details printable: line breaks stay, other control
// characters go (the body is quoted-printable, never headers).
func cleanBody(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, s)
}
