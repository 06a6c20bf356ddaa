package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/approval"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/store"
	"github.com/deputy-iam/deputy/internal/store/storetest"
)

// world is a real SQLite store with a pending request whose approvers are bob and erin (who
// have email addresses) and carol (who has none): the outbox holds one approval_needed
// notification for the three of them.
type world struct {
	ctx     context.Context
	st      *store.Store
	request string
	users   map[string]directory.User // by username
}

// forEngines runs fn on SQLite, and on PostgreSQL when storetest.PostgresDSNEnv names a
// database (skipped otherwise); dsn makes the test's database.
func forEngines(t *testing.T, fn func(t *testing.T, dsn func(testing.TB) string)) {
	for _, e := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", storetest.SQLiteDSN}, {"postgres", storetest.PostgresDSN}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.dsn)
		})
	}
}

func newWorld(t *testing.T, dsn func(testing.TB) string) *world {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, dsn(t))
	env := storetest.Bootstrap(t, st)
	meta := change.Meta{Transport: "test"}
	w := &world{ctx: ctx, st: st, users: map[string]directory.User{}}
	for _, in := range []directory.UserInput{
		{Username: "bob", Email: "bob@example.com", DisplayName: "Bob Builder"},
		{Username: "erin", Email: "erin@example.com"},
		{Username: "carol"},
		{Username: "dave", Email: "dave@example.com"},
	} {
		in.OU = directory.RootPath
		if _, err := env.Pipeline.Submit(ctx, env.Admin, meta, change.Op{Action: delegation.UserCreate, User: &in}); err != nil {
			t.Fatalf("create %s: %v", in.Username, err)
		}
		u, err := st.User(ctx, directory.Ref{Kind: directory.KindUser, Name: in.Username})
		if err != nil {
			t.Fatal(err)
		}
		w.users[in.Username] = u
	}
	_, err := env.Pipeline.CreatePolicy(ctx, env.Admin, meta, approval.Policy{Name: "titles",
		Actions: []delegation.Action{delegation.UserUpdate},
		Stages: []approval.Stage{{Approvers: []approval.Approver{
			{Kind: approval.ApproverUser, User: "bob"}, {Kind: approval.ApproverUser, User: "erin"},
			{Kind: approval.ApproverUser, User: "carol"}}}}})
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	res, err := env.Pipeline.Submit(ctx, env.Admin, meta, change.Op{Action: delegation.UserUpdate,
		Target: directory.Ref{Kind: directory.KindUser, ID: w.users["dave"].ID}, Patch: directory.Patch{"title": json.RawMessage(`"CFO"`)},
		Justification: "promotion"})
	if !errors.Is(err, change.ErrPending) {
		t.Fatalf("update dave: want pending, got %+v, %v", res, err)
	}
	w.request = res.Request
	msgs := w.undelivered(t)
	if len(msgs) != 1 {
		t.Fatalf("undelivered notifications: %+v", msgs)
	}
	return w
}

func (w *world) undelivered(t *testing.T) []store.OutboxMessage {
	t.Helper()
	msgs, err := w.st.Undelivered(w.ctx, Topic, 100)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// clock is a settable clock for the notifier's back-off.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newNotifier(t *testing.T, src Source, opts Options) (*Notifier, *clock) {
	t.Helper()
	n := New(src, opts, storetest.Logger(t))
	c := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	n.now = c.Now
	return n, c
}

// readMail parses an RFC 5322 message and decodes its quoted-printable body.
func readMail(t *testing.T, raw []byte) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	return m, string(body)
}

func decodeSubject(t *testing.T, m *mail.Message) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", m.Header.Get("Subject"), err)
	}
	return s
}

func TestMailDirEndToEnd(t *testing.T) {
	forEngines(t, func(t *testing.T, dsn func(testing.TB) string) {
		w := newWorld(t, dsn)
		dir := filepath.Join(t.TempDir(), "mail")
		msgID := w.undelivered(t)[0].ID
		n, _ := newNotifier(t, w.st, Options{MailDir: dir, SMTPFrom: "Deputy IAM <iam@example.com>",
			BaseURL: "https://deputy.example.com/"})
		if !n.Enabled() {
			t.Fatal("a mail directory is a channel")
		}
		if got := n.poll(w.ctx); got != 1 {
			t.Fatalf("poll delivered %d, want 1", got)
		}
		if msgs := w.undelivered(t); len(msgs) != 0 {
			t.Fatalf("still undelivered: %+v", msgs)
		}
		all, err := w.st.Outbox(w.ctx, Topic, 0, 10)
		if err != nil || len(all) != 1 || all[0].Delivered.IsZero() || all[0].Attempts != 0 {
			t.Fatalf("outbox after delivery: %+v, %v", all, err)
		}

		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("mail directory: %v, %v", fi.Mode(), err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		// One file per recipient with an address: carol has none. Names sort by time, then message.
		if len(names) != 2 || !slices.IsSorted(names) {
			t.Fatalf("mail files: %v", names)
		}
		got := map[string]bool{}
		for _, name := range names {
			if !strings.HasSuffix(name, ".eml") || !strings.Contains(name, fmt.Sprintf("-%010d-", msgID)) {
				t.Errorf("file name %q", name)
			}
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, %v", name, fi.Mode(), err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("%s: bare LF in an RFC 5322 message", name)
			}
			m, body := readMail(t, raw)
			to, err := m.Header.AddressList("To")
			if err != nil || len(to) != 1 {
				t.Fatalf("%s: To %q: %v", name, m.Header.Get("To"), err)
			}
			got[to[0].Address] = true
			if to[0].Address == "bob@example.com" && to[0].Name != "Bob Builder" {
				t.Errorf("To %+v", to[0])
			}
			if from := m.Header.Get("From"); from != `"Deputy IAM" <iam@example.com>` {
				t.Errorf("From %q", from)
			}
			if s := decodeSubject(t, m); !strings.HasPrefix(s, "Approval needed: user.update") {
				t.Errorf("Subject %q", s)
			}
			if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("Message-ID") == "" || m.Header.Get("Date") == "" {
				t.Errorf("headers %v", m.Header)
			}
			link := "https://deputy.example.com/api/v1/requests/" + w.request
			if !strings.Contains(body, "Request: "+w.request) || !strings.Contains(body, link) {
				t.Errorf("body does not name the request and link %s:\n%s", link, body)
			}
		}
		if !got["bob@example.com"] || !got["erin@example.com"] {
			t.Errorf("recipients %v", got)
		}
		// Delivered messages are not delivered again.
		if got := n.poll(w.ctx); got != 0 {
			t.Errorf("second poll delivered %d", got)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("files after a second poll: %d", len(entries))
		}
	})
}

func TestStoreBookkeeping(t *testing.T) {
	forEngines(t, func(t *testing.T, dsn func(testing.TB) string) {
		w := newWorld(t, dsn)
		id := w.undelivered(t)[0].ID
		for i := 0; i < 2; i++ {
			if err := w.st.MarkAttempt(w.ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if msgs := w.undelivered(t); len(msgs) != 1 || msgs[0].Attempts != 2 || !msgs[0].Delivered.IsZero() {
			t.Fatalf("after two attempts: %+v", msgs)
		}
		first := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		if err := w.st.MarkDelivered(w.ctx, id, first); err != nil {
			t.Fatal(err)
		}
		if err := w.st.MarkDelivered(w.ctx, id, first.Add(time.Hour)); err != nil {
			t.Fatalf("marking again: %v", err)
		}
		all, err := w.st.Outbox(w.ctx, Topic, 0, 10)
		if err != nil || len(all) != 1 || !all[0].Delivered.Equal(first) || all[0].Attempts != 2 {
			t.Fatalf("delivered message: %+v, %v (want delivered at %v, the first time)", all, err, first)
		}
		if msgs := w.undelivered(t); len(msgs) != 0 {
			t.Fatalf("undelivered after delivery: %+v", msgs)
		}
		if err := w.st.MarkDelivered(w.ctx, id+100, first); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("mark an unknown message delivered: %v", err)
		}
		if err := w.st.MarkAttempt(w.ctx, id+100); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("count an attempt of an unknown message: %v", err)
		}
		// Other topics are not notifications; "directory" messages are consumed by cursor.
		if msgs, err := w.st.Undelivered(w.ctx, "directory", 3); err != nil || len(msgs) != 3 {
			t.Errorf("undelivered directory messages, limit 3: %d, %v", len(msgs), err)
		}
	})
}

// webhookServer answers with the statuses of codes in turn (the last one from then on) and
// records what it was sent.
type webhookServer struct {
	*httptest.Server
	mu     sync.Mutex
	codes  []int
	bodies [][]byte
	heads  []http.Header
}

func newWebhookServer(t *testing.T, codes ...int) *webhookServer {
	s := &webhookServer{codes: codes}
	s.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.bodies = append(s.bodies, b)
		s.heads = append(s.heads, r.Header.Clone())
		code := s.codes[min(len(s.bodies), len(s.codes))-1]
		if r.Method != http.MethodPost {
			code = http.StatusMethodNotAllowed
		}
		rw.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *webhookServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func TestWebhookRetries(t *testing.T) {
	forEngines(t, func(t *testing.T, dsn func(testing.TB) string) {
		w := newWorld(t, dsn)
		hook := newWebhookServer(t, http.StatusInternalServerError, http.StatusOK)
		msgID := w.undelivered(t)[0].ID
		n, clk := newNotifier(t, w.st, Options{Webhook: hook.URL + "/hook?token=s3cret", Interval: time.Minute})

		if got := n.poll(w.ctx); got != 0 {
			t.Fatalf("a 500 counted as delivered")
		}
		msgs := w.undelivered(t)
		if len(msgs) != 1 || msgs[0].Attempts != 1 || hook.calls() != 1 {
			t.Fatalf("after a 500: %+v, %d calls", msgs, hook.calls())
		}
		// Backing off: a poll before the interval passed does not try again.
		clk.Advance(30 * time.Second)
		if n.poll(w.ctx); hook.calls() != 1 {
			t.Fatalf("retried during back-off: %d calls", hook.calls())
		}
		clk.Advance(31 * time.Second)
		if got := n.poll(w.ctx); got != 1 || hook.calls() != 2 {
			t.Fatalf("retry: delivered %d, %d calls", got, hook.calls())
		}
		if msgs := w.undelivered(t); len(msgs) != 0 {
			t.Fatalf("still undelivered: %+v", msgs)
		}

		h := hook.heads[1]
		if h.Get("Content-Type") != "application/json" || h.Get("Deputy-Notification-ID") != strconv.FormatInt(msgID, 10) {
			t.Errorf("headers %v", h)
		}
		var body WebhookBody
		if err := json.Unmarshal(hook.bodies[1], &body); err != nil {
			t.Fatalf("body %s: %v", hook.bodies[1], err)
		}
		if !bytes.Equal(hook.bodies[0], hook.bodies[1]) {
			t.Errorf("a retry sent another body:\n%s\n%s", hook.bodies[0], hook.bodies[1])
		}
		slices.Sort(body.Usernames)
		if body.ID != msgID || body.Kind != "approval_needed" || body.Request != w.request || len(body.To) != 3 ||
			!slices.Equal(body.Usernames, []string{"bob", "carol", "erin"}) || !strings.HasPrefix(body.Subject, "Approval needed") ||
			body.URL != "" {
			t.Errorf("body %+v", body)
		}
	})
}

// fakeSource is an in-memory Source.
type fakeSource struct {
	mu        sync.Mutex
	msgs      []store.OutboxMessage
	users     map[string]directory.User
	userErr   error
	delivered map[int64]time.Time
}

func newFakeSource(users ...directory.User) *fakeSource {
	f := &fakeSource{users: map[string]directory.User{}, delivered: map[int64]time.Time{}}
	for _, u := range users {
		f.users[u.ID] = u
	}
	return f
}

func (f *fakeSource) add(t *testing.T, note change.Notification) int64 {
	t.Helper()
	raw, err := json.Marshal(note)
	if err != nil {
		t.Fatal(err)
	}
	return f.addRaw(raw)
}

func (f *fakeSource) addRaw(raw []byte) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := int64(len(f.msgs) + 1)
	f.msgs = append(f.msgs, store.OutboxMessage{ID: id, Topic: Topic, Payload: raw,
		Created: time.Date(2026, 12, 1, 8, 0, 0, int(id)*1000, time.UTC)})
	return id
}

func (f *fakeSource) Undelivered(_ context.Context, topic string, limit int) ([]store.OutboxMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.OutboxMessage
	for _, m := range f.msgs {
		if m.Topic == topic && m.Delivered.IsZero() && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *fakeSource) MarkDelivered(_ context.Context, id int64, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[id-1].Delivered = at
	return nil
}

func (f *fakeSource) MarkAttempt(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[id-1].Attempts++
	return nil
}

func (f *fakeSource) User(_ context.Context, ref directory.Ref) (directory.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.userErr != nil {
		return directory.User{}, f.userErr
	}
	u, ok := f.users[ref.ID]
	if !ok {
		return u, directory.NotFound(directory.KindUser, ref.ID)
	}
	return u, nil
}

func (f *fakeSource) message(id int64) store.OutboxMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msgs[id-1]
}

var (
	bob   = directory.User{ID: "u-bob", Username: "bob", DisplayName: "Bob\r\nX-Injected: 1", Email: "bob@example.com"}
	erin  = directory.User{ID: "u-erin", Username: "erin", Email: "erin@example.com"}
	mallo = directory.User{ID: "u-mallory", Username: "mallory", Email: "mallory@example.com\r\nBcc: eve@example.com"}
	carol = directory.User{ID: "u-carol", Username: "carol"}
)

func TestSMTPHeadersAreSafe(t *testing.T) {
	srv := newFakeSMTP(t, fakeSMTPOptions{})
	src := newFakeSource(bob, erin, mallo, carol)
	id := src.add(t, change.Notification{Kind: "decided", Request: "r-1\r\nBcc: eve@example.com",
		To: []string{"u-bob", "u-mallory", "u-carol", "u-gone"}, Subject: "Rejected\r\nBcc: eve@example.com\nX-Evil: 1"})
	n, _ := newNotifier(t, src, Options{SMTPAddr: srv.addr(), SMTPFrom: "deputy@example.com\r\nBcc: eve@example.com"})
	if got := n.poll(context.Background()); got != 0 {
		t.Fatalf("a sender with a line break was accepted")
	}
	if len(srv.sessions()) != 0 {
		t.Fatalf("connected with an unusable sender")
	}

	n, _ = newNotifier(t, src, Options{SMTPAddr: srv.addr(), SMTPFrom: "Deputy <deputy@example.com>"})
	if got := n.poll(context.Background()); got != 1 {
		t.Fatalf("poll delivered %d, want 1 (attempts %d)", got, src.message(id).Attempts)
	}
	mails := srv.mails()
	// mallory's address holds a line break: it is no address, so she is skipped; carol has no
	// email; u-gone does not exist.
	if len(mails) != 1 {
		t.Fatalf("mails %+v", mails)
	}
	got := mails[0]
	if got.from != "deputy@example.com" || !slices.Equal(got.to, []string{"bob@example.com"}) {
		t.Errorf("envelope from %q to %q", got.from, got.to)
	}
	for _, line := range strings.Split(got.data, "\n") {
		if line == "" {
			break // end of the header
		}
		for _, bad := range []string{"Bcc:", "X-Evil:", "X-Injected:"} {
			if strings.HasPrefix(line, bad) {
				t.Errorf("injected header line %q", line)
			}
		}
	}
	m, body := readMail(t, []byte(got.data))
	if s := decodeSubject(t, m); s != "Rejected  Bcc: eve@example.com X-Evil: 1" {
		t.Errorf("Subject %q", s)
	}
	if m.Header.Get("Bcc") != "" || m.Header.Get("X-Evil") != "" || m.Header.Get("X-Injected") != "" {
		t.Errorf("injected headers: %v", m.Header)
	}
	if to, err := m.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "bob@example.com" {
		t.Errorf("To %q: %v", m.Header.Get("To"), err)
	}
	if strings.Contains(body, "Link:") || !strings.Contains(body, "You submitted this request.") {
		t.Errorf("body without a base URL:\n%s", body)
	}
}

func TestSMTPStartTLSAndAuth(t *testing.T) {
	srv := newFakeSMTP(t, fakeSMTPOptions{startTLS: true, auth: true})
	src := newFakeSource(bob, erin)
	src.add(t, change.Notification{Kind: "approval_needed", Request: "r-1", To: []string{"u-bob", "u-erin"}, Subject: "Approval needed: x"})
	n, _ := newNotifier(t, src, Options{SMTPAddr: srv.addr(), SMTPUser: "relay", SMTPPassword: "pw", BaseURL: "https://d.example"})
	n.smtp.tls = srv.clientTLS
	if got := n.poll(context.Background()); got != 1 {
		t.Fatalf("poll delivered %d", got)
	}
	ss := srv.sessions()
	if len(ss) != 1 || !ss[0].tls || ss[0].auth != "\x00relay\x00pw" || len(ss[0].mails) != 2 {
		t.Fatalf("sessions %+v", ss)
	}
	for _, m := range ss[0].mails {
		if !strings.Contains(m.data, "https://d.example/api/v1/requests/r-1") {
			t.Errorf("no link in\n%s", m.data)
		}
	}

	// Credentials are never sent to a server that does not offer AUTH.
	plain := newFakeSMTP(t, fakeSMTPOptions{})
	src = newFakeSource(bob)
	id := src.add(t, change.Notification{Kind: "reminder", Request: "r-2", To: []string{"u-bob"}, Subject: "Reminder"})
	n, _ = newNotifier(t, src, Options{SMTPAddr: plain.addr(), SMTPUser: "relay", SMTPPassword: "pw"})
	if got := n.poll(context.Background()); got != 0 || src.message(id).Attempts != 1 || len(plain.mails()) != 0 {
		t.Fatalf("without AUTH: delivered %d, %+v, mails %d", got, src.message(id), len(plain.mails()))
	}
}

func TestSMTPRefusedRecipientIsRetriedAlone(t *testing.T) {
	srv := newFakeSMTP(t, fakeSMTPOptions{refuse: map[string]bool{"erin@example.com": true}})
	hook := newWebhookServer(t, http.StatusOK)
	src := newFakeSource(bob, erin)
	id := src.add(t, change.Notification{Kind: "escalated", Request: "r-1", To: []string{"u-bob", "u-erin"}, Subject: "Escalated"})
	n, clk := newNotifier(t, src, Options{SMTPAddr: srv.addr(), Webhook: hook.URL, Interval: time.Second})
	if got := n.poll(context.Background()); got != 0 || src.message(id).Attempts != 1 {
		t.Fatalf("refused recipient: delivered %d, %+v", got, src.message(id))
	}
	if got := srv.mails(); len(got) != 1 || got[0].to[0] != "bob@example.com" || hook.calls() != 1 {
		t.Fatalf("first attempt: mails %+v, webhook calls %d", got, hook.calls())
	}
	srv.accept("erin@example.com")
	clk.Advance(time.Second)
	if got := n.poll(context.Background()); got != 1 {
		t.Fatalf("retry delivered %d", got)
	}
	// What the channels accepted the first time is not sent again.
	if got := srv.mails(); len(got) != 2 || got[1].to[0] != "erin@example.com" || hook.calls() != 1 {
		t.Fatalf("after the retry: mails %+v, webhook calls %d", got, hook.calls())
	}
}

func TestNeverDropped(t *testing.T) {
	src := newFakeSource(bob)
	bad := src.addRaw([]byte("{not json"))
	good := src.add(t, change.Notification{Kind: "decided", Request: "r-1", To: []string{"u-bob"}, Subject: "Applied"})
	dir := t.TempDir()
	n, clk := newNotifier(t, src, Options{MailDir: dir, Interval: time.Second})
	for i := 0; i < 5; i++ {
		n.poll(context.Background())
		clk.Advance(time.Hour)
	}
	if m := src.message(bad); !m.Delivered.IsZero() || m.Attempts != 5 {
		t.Errorf("undecodable message: %+v", m)
	}
	if m := src.message(good); m.Delivered.IsZero() {
		t.Errorf("a bad message held up a good one: %+v", m)
	}
	// A store that cannot resolve recipients fails the attempt; it does not skip them.
	src.userErr = errors.New("database is locked")
	again := src.add(t, change.Notification{Kind: "decided", Request: "r-2", To: []string{"u-bob"}, Subject: "Applied"})
	n.poll(context.Background())
	if m := src.message(again); !m.Delivered.IsZero() || m.Attempts != 1 {
		t.Errorf("with the store failing: %+v", m)
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	srv := newFakeSMTP(t, fakeSMTPOptions{auth: true, refuseAuth: true})
	hook := newWebhookServer(t, http.StatusBadGateway)
	src := newFakeSource(bob)
	src.add(t, change.Notification{Kind: "decided", Request: "r-1", To: []string{"u-bob"}, Subject: "Applied"})
	var logs bytes.Buffer
	n := New(src, Options{SMTPAddr: srv.addr(), SMTPUser: "relay", SMTPPassword: "hunter2-password",
		Webhook: hook.URL + "/hook?token=webhook-secret-token"}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if got := n.poll(context.Background()); got != 0 {
		t.Fatalf("delivered %d", got)
	}
	// And a webhook that cannot be reached: its error must not name the URL either.
	hook.Close()
	n = New(src, Options{Webhook: hook.URL + "/hook?token=webhook-secret-token"},
		slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	n.poll(context.Background())
	out := logs.String()
	if !strings.Contains(out, `"message_id":1`) || !strings.Contains(out, "502") {
		t.Errorf("the failures are not logged:\n%s", out)
	}
	for _, secret := range []string{"hunter2-password", "webhook-secret-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("a secret in the logs:\n%s", out)
		}
	}
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want bool
	}{
		{Options{}, false},
		{Options{BaseURL: "https://x", SMTPFrom: "a@b", Interval: time.Second}, false},
		{Options{SMTPAddr: "localhost:25"}, true},
		{Options{MailDir: "/tmp/x"}, true},
		{Options{Webhook: "https://hooks.example/x"}, true},
	} {
		if got := New(nil, tc.opts, nil).Enabled(); got != tc.want {
			t.Errorf("%+v: Enabled() = %v", tc.opts, got)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{SMTPAddr: "mail:587", SMTPFrom: "Deputy <iam@example.com>", Webhook: "https://hooks.example/x?token=t",
			BaseURL: "https://deputy.example.com", Interval: time.Minute}, true},
		{Options{SMTPFrom: "iam@example.com\r\nBcc: eve@example.com"}, false},
		{Options{SMTPFrom: "a@b, c@d"}, false},
		{Options{Webhook: "hooks.example/x"}, false},
		{Options{Webhook: "ftp://hooks.example/x"}, false},
		{Options{BaseURL: "/relative"}, false},
		{Options{Interval: -time.Second}, false},
	} {
		err := tc.opts.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v", tc.opts, err)
		}
		if err != nil && strings.Contains(err.Error(), "token=t") {
			t.Errorf("the error repeats the webhook URL: %v", err)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		attempts int
		want     time.Duration
	}{
		{10 * time.Second, 1, 10 * time.Second},
		{10 * time.Second, 2, 20 * time.Second},
		{10 * time.Second, 4, 80 * time.Second},
		{10 * time.Second, 50, maxBackoff},
		{time.Hour, 3, time.Hour}, // never faster than the polling
	} {
		if got := backoff(tc.interval, tc.attempts); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.attempts, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":               "plain",
		" a\r\nBcc: x@y ":     "a  Bcc: x@y",
		"tab\there":           "tab here",
		"nul\x00del\x7f":      "nul del",
		"line\u2028separator": "line separator",
		"ünïcödé":             "ünïcödé",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRunPollsAtStartAndStops(t *testing.T) {
	src := newFakeSource(bob)
	src.add(t, change.Notification{Kind: "decided", Request: "r-1", To: []string{"u-bob"}, Subject: "Applied"})
	n := New(src, Options{MailDir: t.TempDir(), Interval: time.Hour}, storetest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for src.message(1).Delivered.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not poll at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}
