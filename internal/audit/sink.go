package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Sinks receive the audit log as it grows, each from a cursor the store keeps: every event,
// denied ones included, in index order, delivered at least once (an event delivered just
// before a crash may be delivered again; its index tells a receiver it has it). A sink that
// fails is retried with back-off from where it stopped; nothing is dropped. The log is the
// outbox: it is written in each change's own transaction, so a sink never sees an event whose
// change rolled back, nor misses one that committed.

// Record is one event as a sink receives it: its index and canonical encoding.
type Record struct {
	Index int64
	Body  []byte
}

// Sink delivers records to one destination; an error means none of them counts as delivered.
type Sink interface {
	Name() string
	Deliver(ctx context.Context, recs []Record) error
}

// SinkStore keeps each sink's cursor and feeds it the log.
type SinkStore interface {
	SinkCursor(ctx context.Context, name string) (int64, error)
	SaveSinkCursor(ctx context.Context, name string, next int64, lastErr string) error
	EachEncoded(ctx context.Context, from int64, since time.Time, fn func(body []byte) error) error
}

// Forward delivers the log to sink until ctx ends: from the sink's cursor, in batches of up to
// batch events, polling every poll for more, backing off from 1 s to 1 min while it fails.
func Forward(ctx context.Context, st SinkStore, sink Sink, batch int, poll time.Duration, log *slog.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		next, err := st.SinkCursor(ctx, sink.Name())
		if err == nil {
			var n int
			n, next, err = forwardOnce(ctx, st, sink, next, batch)
			if err == nil {
				backoff = time.Second
				if n == batch {
					continue // more waiting
				}
			}
		}
		wait := poll
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "audit sink: delivery failed; retrying", "sink", sink.Name(), "from", next, "in", backoff, "err", err)
			if serr := st.SaveSinkCursor(ctx, sink.Name(), next, err.Error()); serr != nil {
				log.WarnContext(ctx, "audit sink: save state", "sink", sink.Name(), "err", serr)
			}
			wait, backoff = backoff, min(2*backoff, time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// finishTimeout bounds how long a batch already being delivered when the forwarder stops may
// take to finish.
const finishTimeout = 30 * time.Second

// errBatchFull stops reading the log once a batch is full.
var errBatchFull = errors.New("batch full")

// forwardOnce delivers up to batch events from next and advances the cursor; it returns how
// many it delivered and the new cursor.
func forwardOnce(ctx context.Context, st SinkStore, sink Sink, next int64, batch int) (int, int64, error) {
	var recs []Record
	err := st.EachEncoded(ctx, next, time.Time{}, func(body []byte) error {
		recs = append(recs, Record{Index: next + int64(len(recs)), Body: bytes.Clone(body)})
		if len(recs) == batch {
			return errBatchFull
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBatchFull) {
		return 0, next, err
	}
	if len(recs) == 0 {
		return 0, next, nil
	}
	// A batch under way when the forwarder stops is finished (for a while) and its cursor saved:
	// cut off between the receiver's acknowledgement and the cursor, it would be sent again.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := sink.Deliver(fctx, recs); err != nil {
		return 0, next, err
	}
	next += int64(len(recs))
	return len(recs), next, st.SaveSinkCursor(fctx, sink.Name(), next, "")
}

// Webhook POSTs each batch to a URL as NDJSON (one canonical encoding per line); any 2xx
// answer acknowledges the batch. Deputy-Audit-First and -Last name the indexes it holds.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Name implements Sink.
func (w *Webhook) Name() string { return "webhook " + w.URL }

// Deliver implements Sink.
func (w *Webhook) Deliver(ctx context.Context, recs []Record) error {
	var body bytes.Buffer
	for _, r := range recs {
		body.Write(r.Body)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Deputy-Audit-First", strconv.FormatInt(recs[0].Index, 10))
	req.Header.Set("Deputy-Audit-Last", strconv.FormatInt(recs[len(recs)-1].Index, 10))
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Syslog sends each event as an RFC 5424 message over TCP with octet-counting framing
// (RFC 6587), on a connection it keeps open and redials after an error. TCP acknowledges
// nothing a receiver processed, so a batch counts as delivered once written and flushed.
type Syslog struct {
	Addr     string
	Hostname string

	mu   sync.Mutex
	conn net.Conn
}

// Name implements Sink.
func (s *Syslog) Name() string { return "syslog " + s.Addr }

// Deliver implements Sink.
func (s *Syslog) Deliver(ctx context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return err
		}
		s.conn = c
	}
	host := s.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	w := bufio.NewWriter(s.conn)
	for _, r := range recs {
		e, err := Decode(r.Body)
		if err != nil {
			return err
		}
		msg := RFC5424(&e, r.Body, host)
		fmt.Fprintf(w, "%d %s", len(msg), msg)
	}
	s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := w.Flush(); err != nil {
		s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
