package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/cli"
	"github.com/deputy-iam/deputy/internal/config"
)

// server is a real Deputy on SQLite in a temporary directory, behind an httptest server.
type server struct {
	url    string
	tokens map[string]string
}

// openServer serves the installation in dir, which must be initialized. Second factors are
// optional there (the admin's token from init has no authenticator behind it); TestMFACommands
// serves the default, where they are required.
func openServer(t *testing.T, dir string) string {
	t.Helper()
	return openServerMFA(t, dir, "optional")
}

// openServerMFA serves the installation in dir with the given MFA setting.
func openServerMFA(t *testing.T, dir, mfa string) string {
	t.Helper()
	cfg := config.Config{DataDir: dir, SigningKey: filepath.Join(dir, "audit-signing.key"),
		CheckpointFile: filepath.Join(dir, "audit-checkpoints"), Addr: "127.0.0.1:0",
		LogLevel: "error", LogFormat: "text", ShutdownTimeout: 5 * time.Second, MFA: mfa}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// newServer initializes a fresh installation through the CLI itself and serves it.
func newServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	code, out, errOut := deputy(t, nil, "", "init", "--data", dir, "--admin", "root-admin", "-o", "json", "--log-level", "error")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	var b struct{ User, Token string }
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.Token == "" {
		t.Fatalf("init -o json printed %q (%v)", out, err)
	}
	return &server{url: openServer(t, dir), tokens: map[string]string{"admin": b.Token}}
}

// deputy runs the command with env as its environment and returns the exit code and output.
func deputy(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// cliCase is one run of the command as a user (a key of server.tokens, else a literal token). Out lists substrings
// stdout must hold; ErrOut a substring of stderr. JSON, when set, gets stdout decoded as JSON. Answer marks a
// command that prints its answer on stdout even when its exit code is not 0 (authz check: 3 for "no").
type cliCase struct {
	name   string
	as     string
	args   []string
	stdin  string
	code   int
	out    []string
	errOut string
	json   func(t *testing.T, s *server, v map[string]any)
	answer bool
}

// run runs cases in order; a failed case stops the table, since later ones build on it.
func (s *server) run(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			as := c.as
			if as == "" {
				as = "admin"
			}
			tok, ok := s.tokens[as]
			if !ok {
				tok = as // a literal token
			}
			env := map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": tok}
			code, out, errOut := deputy(t, env, c.stdin, c.args...)
			if code != c.code {
				t.Fatalf("deputy %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), code, c.code, out, errOut)
			}
			switch {
			case c.answer:
				if errOut != "" || out == "" {
					t.Errorf("an answer is on stdout only: stdout %q, stderr %q", out, errOut)
				}
			case code != 0:
				lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "deputy: ") || !strings.HasSuffix(errOut, "\n") {
					t.Errorf("an error is one line on stderr starting with \"deputy: \", got %q", errOut)
				}
				if out != "" {
					t.Errorf("a failed command printed on stdout: %q", out)
				}
			case strings.Contains(errOut, "deputy:"):
				t.Errorf("a successful command reported an error: %q", errOut)
			}
			for _, want := range c.out {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if c.errOut != "" && !strings.Contains(errOut, c.errOut) {
				t.Errorf("stderr %q lacks %q", errOut, c.errOut)
			}
			if c.json != nil {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("-o json output does not parse: %v\n%s", err, out)
				}
				c.json(t, s, v)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

// get reads a string at a dotted path.
func get(v map[string]any, path string) string {
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	switch x := cur.(type) {
	case string:
		return x
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// fields checks fields of a JSON object.
func fields(want map[string]string) func(t *testing.T, s *server, v map[string]any) {
	return func(t *testing.T, s *server, v map[string]any) {
		t.Helper()
		for path, w := range want {
			if got := get(v, path); got != w {
				t.Errorf("%s = %q, want %q in %v", path, got, w, v)
			}
		}
	}
}

// items checks a JSON list's items by a field.
func items(field string, want ...string) func(t *testing.T, s *server, v map[string]any) {
	return func(t *testing.T, s *server, v map[string]any) {
		t.Helper()
		list, ok := v["items"].([]any)
		if !ok {
			t.Fatalf("no items array in %v", v)
		}
		var got []string
		for _, it := range list {
			m, _ := it.(map[string]any)
			got = append(got, get(m, field))
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("items' %s = %v, want %v", field, got, w)
		}
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "data")
	code, out, errOut := deputy(t, nil, "", "init", "--data", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	// Logs go to the stderr Main was given, never to stdout or the process's own stderr.
	if !strings.Contains(errOut, `msg="store: migrated"`) {
		t.Errorf("init's log is not on the given stderr: %q", errOut)
	}
	var b map[string]string
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || len(b) != 2 || b["user"] != "admin" || !strings.HasPrefix(b["token"], "dpy_") {
		t.Fatalf("init -o json printed %q (%v), want {\"user\": \"admin\", \"token\": ...}", out, err)
	}

	// A second init changes nothing and says so in one line.
	code, out2, errOut := deputy(t, nil, "", "init", "--data", dir, "-o", "json", "--log-level", "error")
	if code != 1 || out2 != "" || !strings.Contains(errOut, "already initialized") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("second init: exit %d, stdout %q, stderr %q; want exit 1 and one line saying it is initialized", code, out2, errOut)
	}
	// The environment works like the flag.
	code, _, errOut = deputy(t, map[string]string{"DEPUTY_DATA": dir, "DEPUTY_LOG_LEVEL": "error"}, "", "init", "--admin", "other")
	if code != 1 || !strings.Contains(errOut, "already initialized") {
		t.Errorf("init with DEPUTY_DATA: exit %d, stderr %q", code, errOut)
	}

	// The first token still works, and the second init made no other admin.
	url := openServer(t, dir)
	env := map[string]string{"DEPUTY_SERVER": url, "DEPUTY_TOKEN": b["token"]}
	code, out, errOut = deputy(t, env, "", "user", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("user list with the init token: exit %d: %s", code, errOut)
	}
	var users struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(out), &users); err != nil || len(users.Items) != 1 || users.Items[0]["username"] != "admin" {
		t.Errorf("users after two inits: %s (%v)", out, err)
	}

	// The table form prints the token once, readably.
	code, out, errOut = deputy(t, nil, "", "init", "--data", t.TempDir(), "--admin", "chief", "--log-level", "error")
	if code != 0 || !strings.Contains(out, "Tier-0 admin: chief") || !strings.Contains(out, "API token (shown once): dpy_") {
		t.Errorf("init table output: exit %d, %q, %q", code, out, errOut)
	}

	// A refused init leaves nothing half-done: the same directory can be initialized after.
	retry := t.TempDir()
	code, _, errOut = deputy(t, nil, "", "init", "--data", retry, "--admin", "a,b", "--log-level", "error")
	if code != 1 || !strings.Contains(errOut, "username") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("init with a bad admin name: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = deputy(t, nil, "", "init", "--data", retry, "--admin", "ab", "--log-level", "error"); code != 0 {
		t.Errorf("init after a refused init: exit %d, stderr %q", code, errOut)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad output format", []string{"init", "--data", t.TempDir(), "-o", "yaml"}, `-o "yaml"`},
		{"bad database URL", []string{"init", "--database-url", "mysql://x"}, "database-url"},
		{"serve with bad settings", []string{"serve", "--addr", "nonsense", "--log-format", "xml"}, "want HOST:PORT"},
		{"serve with an argument", []string{"serve", "now"}, `unknown command "now"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := deputy(t, nil, "", c.args...)
			if code != 1 || out != "" || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line naming %q", code, out, errOut, c.want)
			}
		})
	}
}

func TestObjects(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		// OUs
		{name: "ou create", args: []string{"ou", "create", "corp"}, out: []string{"path:", "corp"}},
		{name: "ou create child", args: []string{"ou", "create", "sales", "--parent", "corp", "-o", "json"},
			json: fields(map[string]string{"path": "corp/sales", "parent": "corp", "version": "1"})},
		{name: "ou create eng", args: []string{"ou", "create", "eng", "--parent", "corp"}},
		{name: "ou get by path", args: []string{"ou", "get", "corp/sales", "-o", "json"}, json: fields(map[string]string{"name": "sales"})},
		{name: "ou list", args: []string{"ou", "list"}, out: []string{"PATH", "corp/sales", "corp/eng"}},
		{name: "ou list filtered", args: []string{"ou", "list", "--filter", `name eq "sales"`, "-o", "json"}, json: items("path", "corp/sales")},
		{name: "ou update", args: []string{"ou", "update", "corp/eng", "--set", "name=engineering", "-o", "json"},
			json: fields(map[string]string{"path": "corp/engineering", "version": "2"})},
		{name: "ou move", args: []string{"ou", "move", "corp/engineering", "--to", "/", "-o", "json"},
			json: fields(map[string]string{"path": "engineering"})},
		{name: "ou get root", args: []string{"ou", "get", "/", "-o", "json"}, json: fields(map[string]string{"path": "/", "name": "root"})},
		{name: "ou update root", args: []string{"ou", "update", "/", "--set", "name=top"}, code: 1, errOut: "root OU cannot be renamed"},
		{name: "ou delete root", args: []string{"ou", "delete", "/"}, code: 1, errOut: "root OU cannot be renamed, moved or deleted"},
		{name: "ou update protected typo", args: []string{"ou", "update", "corp", "--set", "protected=yes"}, code: 1,
			errOut: "protected is true or false"},
		{name: "ou update protected", args: []string{"ou", "update", "corp", "--set", "protected=true", "-o", "json"},
			json: fields(map[string]string{"protected": "true"})},
		{name: "ou update unprotected", args: []string{"ou", "update", "corp", "--set", "protected=false", "-o", "json"},
			json: fields(map[string]string{"protected": "false"})},
		{name: "ou move without --to", args: []string{"ou", "move", "engineering"}, code: 1, errOut: "to"},
		{name: "ou delete", args: []string{"ou", "delete", "engineering"}, out: []string{"deleted OU engineering"}},
		{name: "ou get deleted", args: []string{"ou", "get", "engineering"}, code: 1, errOut: "not_found"},

		// users
		{name: "user create", args: []string{"user", "create", "ada", "--given-name", "Ada", "--family-name", "Lovelace",
			"--department", "Sales", "--title", "Senior Analyst", "--ou", "corp/sales", "--email", "ada@example.com",
			"--attr", "site=A1", "--attr", "floor=3", "-o", "json"},
			json: fields(map[string]string{"username": "ada", "display_name": "Ada Lovelace", "ou": "corp/sales",
				"attributes.site": "A1", "attributes.floor": "3", "status": "active"})},
		{name: "user create from stdin", args: []string{"user", "create", "-f", "-", "--title", "Engineer", "-o", "json"},
			stdin: `{"username": "bob", "ou": "corp", "manager": "ada", "department": "Engineering"}`,
			json:  fields(map[string]string{"username": "bob", "manager": "ada", "title": "Engineer"})},
		{name: "user create without a name", args: []string{"user", "create", "--ou", "corp"}, code: 1, errOut: "name the user"},
		{name: "user create invalid", args: []string{"user", "create", "c<d", "--ou", "corp"}, code: 1, errOut: "username"},
		{name: "user create duplicate", args: []string{"user", "create", "ADA", "--ou", "corp"}, code: 1, errOut: "conflict"},
		{name: "user create bad attr", args: []string{"user", "create", "carol", "--ou", "corp", "--attr", "novalue"},
			code: 1, errOut: "KEY=VALUE"},
		{name: "user get", args: []string{"user", "get", "ADA"}, out: []string{"username:", "ada", "department:", "Sales"}},
		{name: "user list table", args: []string{"user", "list"}, out: []string{"USERNAME", "ada", "bob", "Senior Analyst"}},
		{name: "user list filtered", args: []string{"user", "list", "--filter", `department eq "sales" and title sw "Senior"`, "-o", "json"},
			json: items("username", "ada")},
		{name: "user list bad filter", args: []string{"user", "list", "--filter", `title eq`}, code: 1, errOut: "invalid_filter"},
		{name: "user list one page", args: []string{"user", "list", "--limit", "1", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				items("username", "ada")(t, s, v)
				if get(v, "next_cursor") == "" {
					t.Errorf("no next_cursor on a partial page: %v", v)
				}
			}},
		{name: "user list next page", args: []string{"user", "list", "--limit", "1"}, errOut: "(more: --cursor "},
		{name: "user list all pages", args: []string{"user", "list", "--all", "--limit", "1", "-o", "json"},
			json: items("username", "ada", "root-admin", "bob")},
		{name: "user update", args: []string{"user", "update", "ada", "--set", "title=Account Director", "--unset", "attributes.floor",
			"--set", "attributes.badge=7", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				fields(map[string]string{"title": "Account Director", "attributes.badge": "7", "attributes.site": "A1", "version": "2"})(t, s, v)
				if _, ok := v["attributes"].(map[string]any)["floor"]; ok {
					t.Errorf("--unset attributes.floor left it: %v", v["attributes"])
				}
			}},
		{name: "user update stale", args: []string{"user", "update", "ada", "--set", "title=Overwrite", "--if-match", "1"},
			code: 1, errOut: "stale_version"},
		{name: "user update current", args: []string{"user", "update", "ada", "--set", "title=Head", "--if-match", "2", "-o", "json"},
			json: fields(map[string]string{"title": "Head", "version": "3"})},
		{name: "user update quoted version", args: []string{"user", "update", "ada", "--unset", "title", "--if-match", `"3"`, "-o", "json"},
			json: fields(map[string]string{"title": "", "version": "4"})},
		{name: "user update weak ETag", args: []string{"user", "update", "ada", "--set", "title=Lead", "--if-match", `W/"4"`, "-o", "json"},
			json: fields(map[string]string{"title": "Lead", "version": "5"})},
		{name: "user update with a patch", args: []string{"user", "update", "bob", "--patch", `{"location": "Paris", "manager": null}`, "-o", "json"},
			json: fields(map[string]string{"location": "Paris", "manager": ""})},
		{name: "user update nothing", args: []string{"user", "update", "ada"}, code: 1, errOut: "nothing to change"},
		{name: "user update bad set", args: []string{"user", "update", "ada", "--set", "title"}, code: 1, errOut: "FIELD=VALUE"},
		{name: "user update status refused", args: []string{"user", "update", "ada", "--set", "status=disabled"}, code: 1,
			errOut: "status: is changed with the disable and enable actions"},
		{name: "user update unknown", args: []string{"user", "update", "ghost", "--set", "title=x"}, code: 1, errOut: "not_found"},
		{name: "user move", args: []string{"user", "move", "ada", "--to", "corp", "-o", "json"}, json: fields(map[string]string{"ou": "corp"})},
		{name: "user disable", args: []string{"user", "disable", "bob", "-o", "json"}, json: fields(map[string]string{"status": "disabled"})},
		{name: "user disable again", args: []string{"user", "disable", "bob"}, code: 1, errOut: "already disabled"},
		{name: "user enable", args: []string{"user", "enable", "bob"}, out: []string{"status:", "active"}},
		{name: "user token", args: []string{"user", "token", "bob", "--name", "laptop", "--days", "7", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				fields(map[string]string{"user": "bob", "name": "laptop"})(t, s, v)
				s.tokens["bob"] = get(v, "token")
				if !strings.HasPrefix(s.tokens["bob"], "dpy_") {
					t.Errorf("no token in %v", v)
				}
			}},
		{name: "user token table", args: []string{"user", "token", "ada", "--name", "ci"}, out: []string{"API token", "for ada", "dpy_"}},
		{name: "user token without a name", args: []string{"user", "token", "ada"}, code: 1, errOut: "name"},
		{name: "new token works", as: "bob", args: []string{"user", "get", "bob", "-o", "json"}, json: fields(map[string]string{"username": "bob"})},

		// service accounts
		{name: "sa create", args: []string{"sa", "create", "ci-bot", "--ou", "corp", "--owner", "ada", "--description", "builds", "-o", "json"},
			json: fields(map[string]string{"name": "ci-bot", "status": "active", "description": "builds", "ou": "corp"})},
		{name: "sa create without owner", args: []string{"sa", "create", "orphan", "--ou", "corp"}, code: 1, errOut: "owner"},
		{name: "sa update owners", args: []string{"sa", "update", "ci-bot", "--set", "owners=ada,bob", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				if o, _ := v["owners"].([]any); len(o) != 2 {
					t.Errorf("owners = %v, want ada and bob", v["owners"])
				}
			}},
		{name: "sa get", args: []string{"sa", "get", "CI-BOT", "-o", "json"}, json: fields(map[string]string{"name": "ci-bot", "version": "2"})},
		{name: "sa list", args: []string{"sa", "list"}, out: []string{"ci-bot", "ada,bob"}},
		{name: "sa move", args: []string{"sa", "move", "ci-bot", "--to", "/", "-o", "json"}, json: fields(map[string]string{"ou": "/"})},

		// groups
		{name: "group create", args: []string{"group", "create", "staff", "--ou", "corp", "--owner", "ada", "--description", "All staff"},
			out: []string{"name:", "staff", "owners:", "ada"}},
		{name: "group get", args: []string{"group", "get", "Staff", "-o", "json"},
			json: fields(map[string]string{"name": "staff", "description": "All staff", "ou": "corp"})},
		{name: "group create nested", args: []string{"group", "create", "sales-team", "--ou", "corp/sales"}},
		{name: "group add-member user", args: []string{"group", "add-member", "staff", "ada"}, out: []string{"added user ada to staff"}},
		{name: "group add-member sa", args: []string{"group", "add-member", "staff", "sa:ci-bot", "-o", "json"},
			json: fields(map[string]string{"type": "service_account", "name": "ci-bot"})},
		{name: "group add-member group", args: []string{"group", "add-member", "staff", "group:sales-team"}, out: []string{"added group sales-team"}},
		{name: "group add-member cycle", args: []string{"group", "add-member", "sales-team", "staff"}, code: 1, errOut: "cycle"},
		{name: "group add-member unknown", args: []string{"group", "add-member", "staff", "ghost"}, code: 1, errOut: `"ghost"`},
		{name: "group members", args: []string{"group", "members", "staff", "-o", "json"}, json: items("name", "ada", "ci-bot", "sales-team")},
		{name: "group members table", args: []string{"group", "members", "staff"}, out: []string{"TYPE", "service_account", "ci-bot", "manual"}},
		{name: "group members one page", args: []string{"group", "members", "staff", "--limit", "2", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				if list, _ := v["items"].([]any); len(list) != 2 || get(v, "next_cursor") == "" {
					t.Fatalf("want 2 members and a cursor: %v", v)
				}
				env := map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": s.tokens["admin"]}
				code, out, errOut := deputy(t, env, "", "group", "members", "staff", "--cursor", get(v, "next_cursor"), "-o", "json")
				var rest map[string]any
				if code != 0 || json.Unmarshal([]byte(out), &rest) != nil {
					t.Fatalf("members --cursor: exit %d %s %s", code, out, errOut)
				}
				items("name", "sales-team")(t, s, rest)
			}},
		{name: "group members hint", args: []string{"group", "members", "staff", "--limit", "2"}, errOut: "(more: --cursor "},
		{name: "group members all pages", args: []string{"group", "members", "staff", "--limit", "1", "--all", "-o", "json"},
			json: items("name", "ada", "ci-bot", "sales-team")},
		{name: "group members filtered", args: []string{"group", "members", "staff", "--filter", `type eq "user"`, "-o", "json"},
			json: items("name", "ada")},
		{name: "group remove-member", args: []string{"group", "remove-member", "staff", "ada"}, out: []string{"removed ada from staff"}},
		{name: "group remove-member by prefix", args: []string{"group", "remove-member", "staff", "group:sales-team"}},
		{name: "group remove-member again", args: []string{"group", "remove-member", "staff", "ada"}, code: 1, errOut: "not_found"},
		{name: "group update", args: []string{"group", "update", "staff", "--set", "description=Everyone", "--unset", "owners", "-o", "json"},
			json: fields(map[string]string{"description": "Everyone"})},
		{name: "group move", args: []string{"group", "move", "staff", "--to", "corp/sales", "-o", "json"}, json: fields(map[string]string{"ou": "corp/sales"})},
		{name: "group list", args: []string{"group", "list", "--filter", `ou eq "corp/sales"`, "-o", "json"}, json: items("name", "staff", "sales-team")},
		{name: "group delete", args: []string{"group", "delete", "staff"}, out: []string{"deleted group staff"}},

		// deletes, with and without If-Match
		{name: "sa delete", args: []string{"sa", "delete", "ci-bot"}, out: []string{"deleted service account ci-bot"}},
		{name: "user delete stale", args: []string{"user", "delete", "bob", "--if-match", "1"}, code: 1, errOut: "stale_version"},
		{name: "user delete self", args: []string{"user", "delete", "root-admin"}, code: 1, errOut: "your own account"},
		{name: "user delete", args: []string{"user", "delete", "bob"}, out: []string{"deleted user bob"}},
		{name: "deleted user's token", as: "bob", args: []string{"user", "get", "bob"}, code: 1, errOut: "unauthenticated"},
		{name: "ou delete non-empty", args: []string{"ou", "delete", "corp"}, code: 1, errOut: "not empty"},
	})
}

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		{name: "setup ou", args: []string{"ou", "create", "corp"}},
		{name: "setup user", args: []string{"user", "create", "bob", "--ou", "corp", "--justification", "new hire"}},
		{name: "setup token", args: []string{"user", "token", "bob", "--name", "t", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) { s.tokens["bob"] = get(v, "token") }},
		{name: "denied", as: "bob", args: []string{"user", "create", "eve", "--ou", "corp"}, code: 3, errOut: "not_authorized"},
		{name: "failed", args: []string{"user", "create", "BOB", "--ou", "corp"}, code: 1, errOut: "conflict"},
		{name: "by actor", args: []string{"audit", "events", "--actor", "bob", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				items("action", "user.create")(t, s, v)
				ev := v["items"].([]any)[0].(map[string]any)
				// -o json passes the API's events through: actor and target stay objects.
				if get(ev, "actor.name") != "bob" || get(ev, "actor.type") != "user" || get(ev, "target.name") != "eve" ||
					get(ev, "outcome") != "denied" || get(ev, "transport") != "cli" || get(ev, "client_addr") != "127.0.0.1" {
					t.Errorf("denied event: %v", ev)
				}
			}},
		{name: "by outcome", args: []string{"audit", "events", "--outcome", "failed", "-o", "json"}, json: items("target.name", "BOB")},
		{name: "by action and target", args: []string{"audit", "events", "--action", "user.create", "--target", "bob", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) {
				items("outcome", "applied")(t, s, v)
				ev := v["items"].([]any)[0].(map[string]any)
				if get(ev, "justification") != "new hire" {
					t.Errorf("justification not recorded: %v", ev)
				}
			}},
		{name: "by transport", args: []string{"audit", "events", "--transport", "cli", "--actor", "root-admin", "-o", "json"},
			json: items("action", "ou.create", "user.create", "user.issue_token", "user.create")},
		{name: "since and until", args: []string{"audit", "events", "--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z", "-o", "json"},
			json: items("action")},
		{name: "since", args: []string{"audit", "events", "--since", "2000-01-01T00:00:00Z", "--action", "ou.create",
			"--transport", "cli", "-o", "json"}, json: items("target.name", "/", "corp")},
		{name: "table", args: []string{"audit", "events", "--outcome", "denied"},
			out: []string{"INDEX", "ACTOR", "bob", "user.create", "eve", "denied", "not_authorized"}},
		{name: "one page", args: []string{"audit", "events", "--limit", "2"}, errOut: "(more: --cursor "},
		{name: "all pages", args: []string{"audit", "events", "--limit", "2", "--all", "--outcome", "applied", "--actor", "root-admin",
			"--transport", "cli", "-o", "json"},
			json: items("action", "ou.create", "user.create", "user.issue_token")},
		{name: "bad outcome", args: []string{"audit", "events", "--outcome", "won"}, code: 1, errOut: "outcome"},
		{name: "bad since", args: []string{"audit", "events", "--since", "yesterday"}, code: 1, errOut: "since"},
		{name: "a non-admin sees their own", as: "bob", args: []string{"audit", "events"}, out: []string{"eve", "denied"}},
		{name: "but cannot export", as: "bob", args: []string{"audit", "export"}, code: 3, errOut: "not_authorized"},
	})

	// Paging by --cursor visits every event once.
	env := map[string]string{"DEPUTY_SERVER": s.url, "DEPUTY_TOKEN": s.tokens["admin"]}
	var all, paged []any
	code, out, errOut := deputy(t, env, "", "audit", "events", "--limit", "1000", "-o", "json")
	if code != 0 {
		t.Fatalf("audit events: %d %s", code, errOut)
	}
	var p struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	for _, it := range p.Items {
		all = append(all, it["index"])
	}
	cursor := ""
	for range len(all) + 1 {
		args := []string{"audit", "events", "--limit", "3", "-o", "json"}
		if cursor != "" {
			args = append(args, "--cursor", cursor)
		}
		code, out, errOut := deputy(t, env, "", args...)
		if code != 0 {
			t.Fatalf("audit events page: %d %s", code, errOut)
		}
		p.NextCursor = ""
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			paged = append(paged, it["index"])
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(all, paged) || len(all) < 8 {
		t.Errorf("paged events %v, want %v", paged, all)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.run(t, []cliCase{
		{name: "setup", args: []string{"user", "create", "bob", "--ou", "/"}},
		{name: "setup other", args: []string{"user", "create", "carol", "--ou", "/"}},
		{name: "setup token", args: []string{"user", "token", "bob", "--name", "t", "-o", "json"},
			json: func(t *testing.T, s *server, v map[string]any) { s.tokens["bob"] = get(v, "token") }},
		{name: "denied read", as: "bob", args: []string{"user", "list"}, code: 3, errOut: "(not_authorized)"},
		{name: "denied read of another", as: "bob", args: []string{"user", "get", "carol"}, code: 3, errOut: "not_authorized"},
		{name: "denied write", as: "bob", args: []string{"user", "create", "eve", "--ou", "/"}, code: 3, errOut: "not_authorized"},
		{name: "denied token for another", as: "bob", args: []string{"user", "token", "carol", "--name", "x"}, code: 3},
		{name: "denied member add", as: "bob", args: []string{"group", "add-member", "any", "bob"}, code: 3},
		{name: "self read", as: "bob", args: []string{"user", "get", "bob"}, out: []string{"username:", "bob"}},
		{name: "self token", as: "bob", args: []string{"user", "token", "bob", "--name", "second"}, out: []string{"dpy_"}},
		{name: "bad token", as: "dpy_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbb", args: []string{"user", "list"}, code: 1, errOut: "unauthenticated"},
		{name: "not found", args: []string{"group", "get", "ghost"}, code: 1, errOut: `group "ghost": not found (not_found)`},
		{name: "unknown command", args: []string{"frobnicate"}, code: 1, errOut: "unknown command"},
		{name: "unknown flag", args: []string{"user", "list", "--colour"}, code: 1,
			errOut: "unknown flag: --colour (see deputy user list --help)"},
		{name: "missing argument", args: []string{"user", "get"}, code: 1,
			errOut: "usage: deputy user get NAME [flags] (got 0 arguments; see deputy user get --help)"},
		{name: "missing member", args: []string{"group", "add-member", "staff"}, code: 1, errOut: "usage: deputy group add-member GROUP MEMBER"},
		{name: "too many arguments", args: []string{"user", "create", "a", "b"}, code: 1, errOut: "usage: deputy user create"},
		{name: "bad --if-match", args: []string{"user", "update", "bob", "--set", "title=x", "--if-match", "abc"}, code: 1,
			errOut: `--if-match "abc": want the version`},
		{name: "bad --if-match on delete", args: []string{"user", "delete", "bob", "--if-match", "0"}, code: 1, errOut: "--if-match"},
		{name: "bad output", args: []string{"user", "list", "-o", "yaml"}, code: 1, errOut: `-o "yaml"`},
		{name: "bad limit", args: []string{"user", "list", "--limit", "0"}, code: 1, errOut: "limit"},
		{name: "bad patch JSON", args: []string{"user", "update", "bob", "--patch", "{"}, code: 1, errOut: "--patch"},
		{name: "bad file", args: []string{"user", "create", "-f", "/nonexistent.json"}, code: 1, errOut: "/nonexistent.json"},
		{name: "bad stdin", args: []string{"user", "create", "-f", "-"}, stdin: "[1,2]", code: 1, errOut: "not a JSON object"},
		{name: "control character in a flag", args: []string{"user", "create", "x", "--ou", "/", "--title", "a\nb"},
			code: 1, errOut: "title"},
	})

	// Where the server and token come from.
	bob := s.tokens["bob"]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		errOut string
		out    string
	}{
		{"flags", nil, []string{"user", "get", "bob", "--server", s.url, "--token", bob}, 0, "", "bob"},
		{"flags win over the environment", map[string]string{"DEPUTY_SERVER": closed, "DEPUTY_TOKEN": "dpy_x"},
			[]string{"user", "get", "bob", "--server", s.url, "--token", bob}, 0, "", "bob"},
		{"environment", map[string]string{"DEPUTY_SERVER": s.url + "/", "DEPUTY_TOKEN": bob}, []string{"user", "get", "bob"}, 0, "", "bob"},
		{"no token", map[string]string{"DEPUTY_SERVER": s.url}, []string{"user", "list"}, 1, "no API token", ""},
		{"server not a URL", map[string]string{"DEPUTY_TOKEN": bob}, []string{"user", "list", "--server", "localhost:8080"}, 1, "--server", ""},
		{"server unreachable", map[string]string{"DEPUTY_TOKEN": bob, "DEPUTY_SERVER": closed}, []string{"user", "list"}, 1, "cannot reach", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := deputy(t, c.env, "", c.args...)
			if code != c.code || !strings.Contains(errOut, c.errOut) || !strings.Contains(out, c.out) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr with %q, stdout with %q", code, out, errOut, c.code, c.errOut, c.out)
			}
			if code != 0 && strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", errOut)
			}
		})
	}
}

// TestRecoverToken issues a token from the database directly and checks that it works, and that
// the command refuses unknown users and uninitialized databases.
func TestRecoverToken(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := deputy(t, nil, "", "init", "--data", dir, "--log-level", "error"); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	code, out, errOut := deputy(t, nil, "", "recover-token", "--data", dir, "-o", "json", "--log-level", "error")
	if code != 0 {
		t.Fatalf("recover-token: exit %d: %s", code, errOut)
	}
	var res struct{ User, Token string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.User != "admin" || res.Token == "" {
		t.Fatalf("recover-token -o json printed %q (%v)", out, err)
	}
	url := openServer(t, dir)
	env := map[string]string{"DEPUTY_SERVER": url, "DEPUTY_TOKEN": res.Token}
	if code, out, errOut := deputy(t, env, "", "audit", "events", "--action", "user.issue_token", "-o", "json"); code != 0 ||
		strings.Count(out, `"user.issue_token"`) != 2 {
		t.Fatalf("the recovered token does not read the audit trail, or the issue is not in it: exit %d %s %s", code, out, errOut)
	}
	if code, _, errOut := deputy(t, nil, "", "recover-token", "--data", dir, "--user", "nobody", "--log-level", "error"); code != 1 ||
		!strings.Contains(errOut, "nobody") {
		t.Errorf("recover-token for an unknown user: exit %d, %q", code, errOut)
	}
	empty := t.TempDir()
	if code, _, errOut := deputy(t, nil, "", "recover-token", "--data", empty, "--log-level", "error"); code != 1 ||
		!strings.Contains(errOut, "not initialized") {
		t.Errorf("recover-token on an empty directory: exit %d, %q", code, errOut)
	}
	if code, _, errOut := deputy(t, nil, "", "serve", "--data", empty, "--addr", "127.0.0.1:0", "--log-level", "error"); code != 1 ||
		!strings.Contains(errOut, "not initialized") {
		t.Errorf("serve on an empty directory: exit %d, %q", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "new")
	if code, _, errOut := deputy(t, nil, "", "init", "--data", bad, "--admin", "bad,name"); code != 1 ||
		!strings.Contains(errOut, "--admin") {
		t.Errorf("init with a bad admin name: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("init with a bad admin name left %s behind", bad)
	}
}
