package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func resolve(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Resolve(fs, func(k string) string { return env[k] })
}

func TestPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "deputy.json")
	if err := os.WriteFile(file, []byte(`{"data": "/from/file", "addr": "127.0.0.1:7001", "log_level": "warn"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantData string
		wantAddr string
	}{
		{"defaults", nil, nil, "./deputy-data", "127.0.0.1:8080"},
		{"file", []string{"--config", file}, nil, "/from/file", "127.0.0.1:7001"},
		{"env over file", []string{"--config", file}, map[string]string{"DEPUTY_DATA": "/from/env"}, "/from/env", "127.0.0.1:7001"},
		{"flag over env", []string{"--config", file, "--data", "/from/flag"}, map[string]string{"DEPUTY_DATA": "/from/env"},
			"/from/flag", "127.0.0.1:7001"},
		{"config file from env", nil, map[string]string{"DEPUTY_CONFIG": file, "DEPUTY_ADDR": "0.0.0.0:9"}, "/from/file", "0.0.0.0:9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := resolve(t, c.args, c.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DataDir != c.wantData || cfg.Addr != c.wantAddr {
				t.Errorf("data %q addr %q; want %q %q", cfg.DataDir, cfg.Addr, c.wantData, c.wantAddr)
			}
			if cfg.SigningKey != filepath.Join(cfg.DataDir, "audit-signing.key") {
				t.Errorf("signing key %q is not in the data directory", cfg.SigningKey)
			}
		})
	}
}

func TestDatabaseSelection(t *testing.T) {
	cfg, err := resolve(t, []string{"--data", "/d"}, nil)
	if err != nil || cfg.DSN() != "/d/deputy.db" {
		t.Fatalf("SQLite DSN = %q, %v", cfg.DSN(), err)
	}
	url := "postgres://u@h:5432/db"
	cfg, err = resolve(t, nil, map[string]string{"DEPUTY_DATABASE_URL": url})
	if err != nil || cfg.DSN() != url {
		t.Fatalf("PostgreSQL DSN = %q, %v", cfg.DSN(), err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string][]string{
		"addr":            {"--addr", "8080"},
		"database-url":    {"--database-url", "mysql://x"},
		"log-level":       {"--log-level", "loud"},
		"log-format":      {"--log-format", "xml"},
		"trusted-proxies": {"--trusted-proxies", "10.0.0.0/8, proxy.example"},
	}
	for want, args := range cases {
		if _, err := resolve(t, args, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v does not name %s", args, err, want)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"colour": "red"}`), 0o600)
	if _, err := resolve(t, []string{"--config", bad}, nil); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown config key: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := resolve(t, []string{"--trusted-proxies", " 10.1.2.3/8 ,192.0.2.7, ::ffff:198.51.100.9,2001:db8::/32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.9/32", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("proxies %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("proxy %d is %s, want %s", i, got[i], want[i])
		}
	}
}
