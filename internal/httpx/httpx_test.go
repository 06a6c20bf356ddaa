package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/credential"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

type input struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		status      int // 0: decoded
		code        string
		field       string
	}{
		{name: "valid", contentType: "application/json", body: `{"name":"a","count":2,"tags":["x"]}`},
		{name: "no content type", body: `{"name":"a"}`},
		{name: "charset parameter", contentType: "application/json; charset=utf-8", body: `{"name":"a"}`},
		{name: "merge patch", contentType: "application/merge-patch+json", body: `{"name":"a"}`},
		{name: "vendor json", contentType: "application/vnd.deputy+json", body: `{"name":"a"}`},
		{name: "text", contentType: "text/plain", body: `{"name":"a"}`, status: 415, code: "unsupported_media_type"},
		{name: "malformed content type", contentType: "application/", body: `{}`, status: 415, code: "unsupported_media_type"},
		{name: "empty", contentType: "application/json", body: ``, status: 400, code: "bad_body"},
		{name: "invalid UTF-8", contentType: "application/json", body: "{\"name\":\"\xc3\x28\"}", status: 400, code: "bad_body"},
		{name: "syntax", contentType: "application/json", body: `{"name":`, status: 400, code: "bad_body", field: "body"},
		{name: "trailing value", contentType: "application/json", body: `{"name":"a"}{"name":"b"}`, status: 400, code: "bad_body"},
		{name: "unknown field", contentType: "application/json", body: `{"name":"a","colour":"red"}`, status: 422, code: "invalid", field: "colour"},
		{name: "wrong type", contentType: "application/json", body: `{"count":"two"}`, status: 422, code: "invalid", field: "count"},
		{name: "wrong element type", contentType: "application/json", body: `{"tags":[1]}`, status: 422, code: "invalid", field: "tags"},
		{name: "too large", contentType: "application/json", body: `{"name":"` + strings.Repeat("a", httpx.MaxBody) + `"}`,
			status: 413, code: "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			var in input
			err := httpx.Decode(httptest.NewRecorder(), r, &in)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if in.Name != "a" {
					t.Errorf("decoded %+v", in)
				}
				return
			}
			p := httpx.ProblemFor(err)
			if p.Status != tc.status || p.Code != tc.code {
				t.Fatalf("problem %d %q (%v), want %d %q", p.Status, p.Code, err, tc.status, tc.code)
			}
			if tc.field != "" && (len(p.Fields) == 0 || p.Fields[0].Field != tc.field) {
				t.Errorf("fields %v, want %q", p.Fields, tc.field)
			}
		})
	}
}

func TestIfMatch(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   int64
		bad    bool
	}{
		{"", 0, false}, {"*", 0, false}, {`"3"`, 3, false}, {`W/"12"`, 12, false}, {"7", 7, false}, {` "4" `, 4, false},
		{`"abc"`, 0, true}, {`"0"`, 0, true}, {`"-1"`, 0, true}, {`"1", "2"`, 0, true}, {`"99999999999999999999"`, 0, true},
	} {
		r := httptest.NewRequest("PATCH", "/", nil)
		if tc.header != "" {
			r.Header.Set("If-Match", tc.header)
		}
		got, err := httpx.IfMatch(r)
		if tc.bad {
			if p := httpx.ProblemFor(err); err == nil || p.Status != 400 || p.Code != "bad_if_match" {
				t.Errorf("If-Match %q: %d %v, want 400 bad_if_match", tc.header, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("If-Match %q = %d, %v; want %d", tc.header, got, err, tc.want)
		}
	}
	if got := httpx.ETag(5); got != `"5"` {
		t.Errorf("ETag(5) = %s", got)
	}
}

func TestProblemFor(t *testing.T) {
	event := int64(9)
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		field  string
	}{
		{"denied", fmt.Errorf("wrapped: %w", &change.DeniedError{Reason: "not_authorized", Message: "no", Event: event}), 403, "not_authorized", ""},
		{"bad token", credential.ErrBadToken, 401, "unauthenticated", ""},
		{"invalid", directory.Invalid("username", "is required"), 422, "invalid", "username"},
		{"invalid filter", fmt.Errorf("%w: unknown attribute", filter.ErrInvalid), 400, "invalid_filter", "filter"},
		{"conflict", fmt.Errorf("store: %w", directory.Conflict("email", "is taken")), 409, "conflict", "email"},
		{"stale", directory.StaleVersion(1, 2), 409, "stale_version", "version"},
		{"not found", directory.NotFound(directory.KindUser, "ghost"), 404, "not_found", ""},
		{"parked", change.ErrParked, 409, "approval_required", ""},
		{"problem", httpx.NewProblem(418, "teapot", "short and stout"), 418, "teapot", ""},
		{"anything else", errors.New("store: read users: disk I/O error at /var/lib/secret.db"), 500, "internal", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := httpx.ProblemFor(tc.err)
			if p.Status != tc.status || p.Code != tc.code || p.Type == "" || p.Title == "" {
				t.Fatalf("problem %+v, want %d %q", p, tc.status, tc.code)
			}
			if tc.field != "" && (len(p.Fields) == 0 || p.Fields[0].Field != tc.field) {
				t.Errorf("fields %v, want %q", p.Fields, tc.field)
			}
			if tc.status == 500 && strings.Contains(p.Detail, "secret") {
				t.Errorf("a 500 leaks its cause: %q", p.Detail)
			}
			if tc.status == 403 && (p.Event == nil || *p.Event != event) {
				t.Errorf("denial names event %v, want %d", p.Event, event)
			}
		})
	}
}

func TestWriteErrorLogsOnlyServerErrors(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for _, tc := range []struct {
		err     error
		status  int
		logline bool
	}{
		{directory.NotFound(directory.KindGroup, "x"), 404, false},
		{errors.New("database is locked"), 500, true},
	} {
		logged.Reset()
		w := httptest.NewRecorder()
		httpx.WriteError(w, httptest.NewRequest("GET", "/api/v1/groups/x", nil), log, tc.err)
		if w.Code != tc.status || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%v: %d %s", tc.err, w.Code, w.Header().Get("Content-Type"))
		}
		var p httpx.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tc.status {
			t.Errorf("%v: body %s (%v)", tc.err, w.Body, err)
		}
		if got := strings.Contains(logged.String(), "database is locked"); got != tc.logline {
			t.Errorf("%v: logged %q", tc.err, logged.String())
		}
	}
}

func TestObserve(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fine")) })
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom: secret detail") })
	h := httpx.Chain(mux, httpx.Observe(log, nil), httpx.SecureHeaders)

	for _, tc := range []struct {
		path, requestID string
		status          int
		keepsID         bool
	}{
		{"/ok", "abc-123", 200, true},
		{"/ok", strings.Repeat("x", 65), 200, false},
		{"/panic", "", 500, false},
	} {
		logged.Reset()
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.requestID != "" {
			r.Header.Set("X-Request-Id", tc.requestID)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, w.Code, tc.status)
		}
		id := w.Header().Get("X-Request-Id")
		if id == "" || (id == tc.requestID) != tc.keepsID {
			t.Errorf("%s: X-Request-Id %q for %q", tc.path, id, tc.requestID)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers missing", tc.path)
		}
		if !strings.Contains(logged.String(), "request_id="+id) || !strings.Contains(logged.String(), fmt.Sprintf("status=%d", tc.status)) {
			t.Errorf("%s: log %q lacks the request", tc.path, logged.String())
		}
		if tc.status == 500 {
			if w.Header().Get("Content-Type") != "application/problem+json" || strings.Contains(w.Body.String(), "secret") {
				t.Errorf("panic answer: %s %s", w.Header().Get("Content-Type"), w.Body)
			}
			if !strings.Contains(logged.String(), "panic in handler") {
				t.Errorf("panic not logged: %s", logged.String())
			}
		}
	}
}

func TestClientAddr(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := httpx.ClientAddr(r); got != "192.0.2.7" {
		t.Errorf("ClientAddr = %q, want the TCP peer, never a forwarding header", got)
	}
	r.RemoteAddr = "[2001:db8::1]:443"
	if got := httpx.ClientAddr(r); got != "2001:db8::1" {
		t.Errorf("ClientAddr = %q", got)
	}
}

func TestTrustedProxies(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32")}
	var seen string
	h := httpx.TrustedProxies(nets)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = httpx.ClientAddr(r) }))
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"a direct client's header is not believed", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"behind one proxy", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged leftmost hop is skipped", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"through two proxies", "192.0.2.7:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"header lines joined", "10.1.2.3:4000", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"only proxies: the peer", "10.1.2.3:4000", []string{"10.0.0.1"}, "10.1.2.3"},
		{"no header: the peer", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"a garbled hop: the peer", "10.1.2.3:4000", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		{"IPv6 proxy", "[2001:db8::1]:443", []string{"2001:db9::5"}, "2001:db9::5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		seen = ""
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != c.want {
			t.Errorf("%s: client %q, want %q", c.name, seen, c.want)
		}
	}
}
