package api_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/deputy-iam/deputy/internal/api"
	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/config"
)

// openapiSpec is the API contract, relative to this package's directory.
const openapiSpec = "../../api/openapi.yaml"

// openapiOp is one operation of the contract: an HTTP method and a path template.
type openapiOp struct{ method, path string }

func (o openapiOp) String() string { return o.method + " " + o.path }

var (
	openapiPathLine   = regexp.MustCompile(`^  (/\S*):\s*$`)
	openapiMethodLine = regexp.MustCompile(`^    (get|put|post|patch|delete|head|options|trace):\s*$`)
)

// openapiOperations reads the operations under the top-level `paths:` key of the spec. It is a
// line scan, not a YAML parser: path keys sit at two spaces of indentation and their methods at
// four, as api/openapi.yaml writes them.
func openapiOperations(t *testing.T) []openapiOp {
	t.Helper()
	f, err := os.Open(openapiSpec)
	if err != nil {
		t.Fatalf("open the API contract: %v", err)
	}
	defer f.Close()
	var (
		ops     []openapiOp
		inPaths bool
		path    string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "" || strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		case !strings.HasPrefix(line, " "): // a top-level key
			inPaths = line == "paths:"
			path = ""
			continue
		case !inPaths:
			continue
		}
		if m := openapiPathLine.FindStringSubmatch(line); m != nil {
			path = m[1]
		} else if m := openapiMethodLine.FindStringSubmatch(line); m != nil && path != "" {
			ops = append(ops, openapiOp{method: strings.ToUpper(m[1]), path: path})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the API contract: %v", err)
	}
	if len(ops) == 0 {
		t.Fatalf("%s: no operations found under paths:", openapiSpec)
	}
	return ops
}

// openapiSample turns a path template into a concrete path: every {param} becomes a value that
// any route's wildcard accepts.
func openapiSample(template string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(template, "7")
}

// openapiApp opens a real, empty Deputy on SQLite in a temporary directory.
func openapiApp(t *testing.T) *app.App {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	cfg := config.Config{DataDir: dir, Addr: "127.0.0.1:0", SigningKey: filepath.Join(dir, "audit-signing.key"),
		LogLevel: "info", LogFormat: "text"}
	a, err := app.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestOpenAPIDocumentsEveryRoute checks api/openapi.yaml against the routes the server really
// registers, both ways. The API's routes are registered on a fresh ServeMux exactly as
// internal/app does; each documented operation must resolve (ServeMux.Handler) to the pattern
// "METHOD /path/{param}" with the same wildcard names, and the number of routes registered
// behind authentication must equal the number of documented /api operations, so a route the
// contract lacks is caught too. The unauthenticated operations (/healthz, /readyz, /metrics)
// are probed on the full handler.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	ops := openapiOperations(t)
	a := openapiApp(t)

	mux := http.NewServeMux()
	registered := 0
	countingAuth := func(h http.Handler) http.Handler { registered++; return h }
	api.New(a.Pipeline, a.Engine, a.Store, a.Store, a.Store, a.Log).Register(mux, countingAuth)
	// The sign-in routes (internal/authn) are part of the contract too.
	for _, p := range a.AuthPatterns() {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
		registered++
	}

	documented := map[string]bool{}
	var apiOps, otherOps []openapiOp
	for _, op := range ops {
		if documented[op.String()] {
			t.Errorf("%s is documented twice", op)
		}
		documented[op.String()] = true
		if strings.HasPrefix(op.path, "/api/") {
			apiOps = append(apiOps, op)
		} else {
			otherOps = append(otherOps, op)
		}
	}

	for _, op := range apiOps {
		req := httptest.NewRequest(op.method, openapiSample(op.path), nil)
		_, pattern := mux.Handler(req)
		if pattern != op.String() {
			t.Errorf("api/openapi.yaml documents %s, but the server routes %s %s to %q (want a route registered as %q)",
				op, op.method, req.URL.Path, pattern, op.String())
		}
	}
	if registered != len(apiOps) {
		var missing []string
		for _, p := range openapiRegisteredInSource(t) {
			if !documented[p] {
				missing = append(missing, p)
			}
		}
		t.Errorf("the API registers %d authenticated routes, api/openapi.yaml documents %d /api operations; undocumented routes in server.go: %v",
			registered, len(apiOps), missing)
	}

	handler := a.Handler()
	for _, op := range otherOps {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(op.method, openapiSample(op.path), nil))
		if rec.Code != http.StatusOK {
			t.Errorf("api/openapi.yaml documents %s; the server answers it with %d, want 200", op, rec.Code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if !documented["GET "+p] {
			t.Errorf("GET %s is served but not documented in api/openapi.yaml", p)
		}
	}
}

// openapiRegisteredInSource lists the route patterns server.go registers, read from its source.
// It only names what is missing when the counts disagree; the check itself runs the real code.
func openapiRegisteredInSource(t *testing.T) []string {
	b, err := os.ReadFile("server.go")
	if err != nil {
		t.Logf("read server.go: %v", err)
		return nil
	}
	var out []string
	for _, m := range regexp.MustCompile(`route\("([A-Z]+ /[^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIScanFindsOperations guards the line scan itself: it must see the operations of a
// few well-known paths, so that a reformatted spec cannot make the route check pass vacuously.
func TestOpenAPIScanFindsOperations(t *testing.T) {
	ops := openapiOperations(t)
	for _, want := range []string{"GET /api/v1/me", "PATCH /api/v1/users/{user}",
		"DELETE /api/v1/groups/{group}/members/{member}", "GET /healthz"} {
		if !slices.ContainsFunc(ops, func(o openapiOp) bool { return o.String() == want }) {
			t.Errorf("the scan of %s did not find %s", openapiSpec, want)
		}
	}
}
