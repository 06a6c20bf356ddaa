package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

// env is a real Deputy (SQLite in a temporary directory) behind a real HTTP server, initialized
// with the tier-0 admin "admin". tokens maps a name used in scenarios to an API token.
type env struct {
	t      *testing.T
	app    *app.App
	srv    *httptest.Server
	tokens map[string]string
	// ids holds object IDs saved by scenarios; "{key}" in a scenario's path or header values
	// is replaced by ids[key].
	ids map[string]string
}

// newEnv starts a fresh server on a fresh database. Second factors are optional there (the
// admin calls with a token and has no authenticator); newEnvConfig(t, nil) has the default,
// where they are required.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvConfig(t, func(c *config.Config) { c.MFA = "optional" })
}

// newEnvConfig starts a fresh server with the default configuration, changed by mut.
func newEnvConfig(t *testing.T, mut func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"),
		CheckpointFile: filepath.Join(dir, "audit-checkpoints"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second}
	if mut != nil {
		mut(&cfg)
	}
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	b, err := a.Init(ctx, "admin")
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, app: a, srv: srv, tokens: map[string]string{"admin": b.Token},
		ids: map[string]string{"admin": b.Admin.ID, "root": b.Admin.OUID}}
}

// response is an answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r *response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Items decodes a list body and returns its items.
func (r *response) Items(t *testing.T) []map[string]any {
	t.Helper()
	var p struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("body is not a list: %v\n%s", err, r.Body)
	}
	if p.Items == nil {
		t.Fatalf("list has no items array: %s", r.Body)
	}
	return p.Items
}

// problem is an RFC 9457 body as Deputy writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	Event *int64 `json:"event"`
}

// Problem checks that the response is a well-formed problem and returns it.
func (r *response) Problem(t *testing.T) problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p problem
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body does not decode: %v\n%s", err, r.Body)
	}
	if p.Type == "" || p.Title == "" || p.Code == "" || p.Status != r.Status {
		t.Fatalf("problem lacks type/title/code or its status %d differs from %d: %s", p.Status, r.Status, r.Body)
	}
	return p
}

// fieldNamed returns the message of the problem's error about field, and whether there is one.
func (p problem) fieldNamed(field string) (string, bool) {
	for _, e := range p.Errors {
		if e.Field == field {
			return e.Message, true
		}
	}
	return "", false
}

// fields lists the fields the problem names.
func (p problem) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// request is one HTTP request of a test. As names the token (a key of env.tokens; "" is the
// admin, "-" sends no Authorization header). Body is sent as is when it is a string or []byte,
// and as JSON otherwise (nil sends no body).
type request struct {
	Method, Path string
	As           string
	Header       map[string]string
	Body         any
}

// do sends req and reads the answer.
func (e *env) do(req request) *response {
	e.t.Helper()
	var body io.Reader
	contentType := ""
	switch b := req.Body.(type) {
	case nil:
	case string:
		body, contentType = strings.NewReader(b), "application/json"
	case []byte:
		body, contentType = bytes.NewReader(b), "application/json"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
		body, contentType = bytes.NewReader(data), "application/json"
	}
	hr, err := http.NewRequest(req.Method, e.srv.URL+req.Path, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	switch req.As {
	case "-":
	case "":
		hr.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
	default:
		tok, ok := e.tokens[req.As]
		if !ok {
			tok = req.As // a literal token
		}
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", req.Method, req.Path, err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// must sends req as the admin and fails the test unless the status is want.
func (e *env) must(want int, method, path string, body any) map[string]any {
	e.t.Helper()
	r := e.do(request{Method: method, Path: path, Body: body})
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(e.t)
}

// get reads an object as the admin.
func (e *env) get(path string) map[string]any {
	e.t.Helper()
	return e.must(http.StatusOK, "GET", path, nil)
}

// newUser creates a user in the root OU and returns its JSON.
func (e *env) newUser(username string, extra map[string]any) map[string]any {
	e.t.Helper()
	body := map[string]any{"username": username, "ou": "/"}
	for k, v := range extra {
		body[k] = v
	}
	return e.must(http.StatusCreated, "POST", "/api/v1/users", body)
}

// tokenFor has the admin issue an API token for username and stores it under that name.
func (e *env) tokenFor(username string) string {
	e.t.Helper()
	out := e.must(http.StatusCreated, "POST", "/api/v1/users/"+username+"/tokens", map[string]any{"name": "test"})
	tok, _ := out["token"].(string)
	if tok == "" {
		e.t.Fatalf("token answer has no token: %v", out)
	}
	e.tokens[username] = tok
	return tok
}

// events reads audit events matching query (url-encoded filters) as the admin.
func (e *env) events(query url.Values) []map[string]any {
	e.t.Helper()
	r := e.do(request{Method: "GET", Path: "/api/v1/audit/events?" + query.Encode()})
	if r.Status != http.StatusOK {
		e.t.Fatalf("audit events: status %d: %s", r.Status, r.Body)
	}
	return r.Items(e.t)
}

// lastApplied is the index of the newest applied event, -1 when there is none.
func (e *env) lastApplied() int64 {
	e.t.Helper()
	evs := e.events(url.Values{"outcome": {"applied"}, "limit": {"1"}})
	if len(evs) == 0 {
		return -1
	}
	return int64(evs[0]["index"].(float64))
}

// scenario is one step of a table: a request and what its answer must be. Code and Field apply
// to problem answers: the problem's code, and a field its errors[] must name. Save stores the
// answer's "id" in env.ids under that key. Check, when set, looks further at the answer.
type scenario struct {
	name   string
	req    request
	status int
	code   string
	field  string
	save   string
	check  func(t *testing.T, e *env, r *response)
}

// expandBody expands the strings of a JSON body built of maps and slices; raw bodies (string,
// []byte) are sent as written.
func (e *env) expandBody(v any) any {
	switch v.(type) {
	case string, []byte:
		return v
	}
	return e.expandValue(v)
}

func (e *env) expandValue(v any) any {
	switch b := v.(type) {
	case string:
		return e.expand(b)
	case map[string]any:
		out := make(map[string]any, len(b))
		for k, x := range b {
			out[k] = e.expandValue(x)
		}
		return out
	case []any:
		out := make([]any, len(b))
		for i, x := range b {
			out[i] = e.expandValue(x)
		}
		return out
	case []string:
		out := make([]string, len(b))
		for i, x := range b {
			out[i] = e.expand(x)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(b))
		for k, x := range b {
			out[k] = e.expand(x)
		}
		return out
	}
	return v
}

// expand replaces "{key}" with e.ids[key]; an unknown key fails the test.
func (e *env) expand(s string) string {
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return s
		}
		id, ok := e.ids[s[i+1:i+j]]
		if !ok {
			e.t.Fatalf("no saved id %q in %q", s[i+1:i+j], s)
		}
		s = s[:i] + id + s[i+j+1:]
	}
}

// with makes the env's helpers report to t (a subtest) until the returned func is called.
func (e *env) with(t *testing.T) func() {
	prev := e.t
	e.t = t
	return func() { e.t = prev }
}

// run executes the scenarios in order, each as a subtest; later steps may depend on earlier
// ones, so a failed step stops the table.
func (e *env) run(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		ok := t.Run(sc.name, func(t *testing.T) {
			defer e.with(t)()
			req := sc.req
			req.Path = e.expand(req.Path)
			req.Body = e.expandBody(req.Body)
			if req.Header != nil {
				req.Header = maps.Clone(req.Header)
				for k, v := range req.Header {
					req.Header[k] = e.expand(v)
				}
			}
			r := e.do(req)
			if r.Status != sc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", sc.req.Method, sc.req.Path, r.Status, sc.status, r.Body)
			}
			if r.Status >= 400 {
				p := r.Problem(t)
				if sc.code != "" && p.Code != sc.code {
					t.Errorf("code = %q, want %q: %s", p.Code, sc.code, r.Body)
				}
				if sc.field != "" {
					if _, ok := p.fieldNamed(sc.field); !ok {
						t.Errorf("errors[] names %v, want %q: %s", p.fields(), sc.field, r.Body)
					}
				}
			} else if sc.code != "" || sc.field != "" {
				t.Fatalf("scenario expects a problem, but the status is %d", r.Status)
			}
			if sc.save != "" {
				id := str(r.JSON(t), "id")
				if id == "" {
					t.Fatalf("answer has no id to save: %s", r.Body)
				}
				e.ids[sc.save] = id
			}
			if sc.check != nil {
				sc.check(t, e, r)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

// str reads a string at a dotted path of a JSON object ("" when absent).
func str(m map[string]any, path string) string {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[k]
	}
	switch v := cur.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// namesOf lists the "name" (or "username") of each item.
func namesOf(items []map[string]any) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		n := str(it, "name")
		if n == "" {
			n = str(it, "username")
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// wantNames checks a list answer holds exactly names.
func wantNames(names ...string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		got := namesOf(r.Items(t))
		want := slices.Clone(names)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("items = %v, want %v", got, want)
		}
	}
}

// wantJSON checks fields (dotted paths) of an object answer.
func wantJSON(fields map[string]string) func(t *testing.T, e *env, r *response) {
	return func(t *testing.T, e *env, r *response) {
		t.Helper()
		m := r.JSON(t)
		for path, want := range fields {
			want = e.expand(want)
			if got := str(m, path); got != want {
				t.Errorf("%s = %q, want %q (body %s)", path, got, want, r.Body)
			}
		}
	}
}
