package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSinkStore is a log of n canonical events and the sinks' cursors, as the store keeps them.
type memSinkStore struct {
	mu      sync.Mutex
	bodies  [][]byte
	cursors map[string]int64
	errors  map[string]string
}

func newMemSinkStore(t *testing.T, n int) *memSinkStore {
	s := &memSinkStore{cursors: map[string]int64{}, errors: map[string]string{}}
	for range n {
		s.add(t)
	}
	return s
}

func (s *memSinkStore) add(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.bodies)
	b, err := Encode(&Event{Index: int64(i), Time: time.Date(2026, 11, 28, 9, 0, i, 0, time.UTC), Actor: Principal{Type: "user", ID: "u", Name: "admin"},
		Action: "user.update", Target: Target{Type: "user", ID: fmt.Sprint(i), Name: fmt.Sprintf("user%d", i)}, Outcome: Applied, Transport: TransportAPI})
	if err != nil {
		t.Fatal(err)
	}
	s.bodies = append(s.bodies, b)
}

func (s *memSinkStore) SinkCursor(_ context.Context, name string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[name], nil
}

func (s *memSinkStore) SaveSinkCursor(_ context.Context, name string, next int64, lastErr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursors[name], s.errors[name] = next, lastErr
	return nil
}

func (s *memSinkStore) EachEncoded(_ context.Context, from int64, _ time.Time, fn func([]byte) error) error {
	s.mu.Lock()
	bodies := s.bodies[min(int(from), len(s.bodies)):]
	s.mu.Unlock()
	for _, b := range bodies {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// TestWebhookSink delivers a log to a webhook that fails at first: every event arrives, in
// order, none lost, and the cursor ends past the last; events logged later follow; a new
// forwarder (a restart) goes on from the cursor without resending.
func TestWebhookSink(t *testing.T) {
	st := newMemSinkStore(t, 1200)
	var (
		mu       sync.Mutex
		got      []int64
		requests int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests <= 2 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		first, _ := strconv.ParseInt(r.Header.Get("Deputy-Audit-First"), 10, 64)
		for k, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			idx, ok := encodedIndex([]byte(line))
			if !ok || int64(idx) != first+int64(k) {
				t.Errorf("line %d of a batch from %d is %q", k, first, line[:min(len(line), 40)])
			}
			got = append(got, int64(idx))
		}
	}))
	defer srv.Close()
	sink := &Webhook{URL: srv.URL}
	run := func(until func() bool) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { Forward(ctx, st, sink, 500, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
		deadline := time.Now().Add(20 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
	}
	delivered := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n }
	}
	run(delivered(1200))
	st.add(t)
	st.add(t)
	run(delivered(1202))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1202 {
		t.Fatalf("%d events delivered, want 1202", len(got))
	}
	for i, idx := range got {
		if idx != int64(i) {
			t.Fatalf("delivery %d is event %d", i, idx)
		}
	}
	if st.cursors[sink.Name()] != 1202 || st.errors[sink.Name()] != "" {
		t.Fatalf("cursor %d, last error %q", st.cursors[sink.Name()], st.errors[sink.Name()])
	}
	if requests < 5 { // two refused, three batches of 500, 500 and 200, then the 2 later ones
		t.Fatalf("%d requests", requests)
	}
}

// TestSyslogSink delivers over TCP with octet-counting framing (RFC 6587), every event in order
// as an RFC 5424 message.
func TestSyslogSink(t *testing.T) {
	st := newMemSinkStore(t, 30)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	msgs := make(chan string, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var n int
					if _, err := fmt.Fscanf(r, "%d ", &n); err != nil {
						return
					}
					buf := make([]byte, n)
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					msgs <- string(buf)
				}
			}()
		}
	}()
	sink := &Syslog{Addr: l.Addr().String(), Hostname: "h"}
	defer sink.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Forward(ctx, st, sink, 10, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	for i := range 30 {
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m, "<86>1 ") || !strings.Contains(m, fmt.Sprintf(`index="%d"`, i)) || !strings.Contains(m, " h deputy - user.update ") {
				t.Fatalf("message %d: %q", i, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d messages arrived", i)
		}
	}
}
