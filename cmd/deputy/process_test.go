package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a separate process, because what they check (signals,
// a crash) cannot happen inside the test process.

// buildBinary compiles deputy into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "deputy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a running deputy serve process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
	done   chan error
}

func startServer(t *testing.T, bin, data, addr string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(bin, "serve", "--data", data, "--addr", addr), addr: addr, stderr: &bytes.Buffer{},
		done: make(chan error, 1)}
	s.cmd.Env = append(os.Environ(), "DEPUTY_DATABASE_URL=")
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become ready; stderr:\n%s", s.stderr)
	return nil
}

func initData(t *testing.T, bin, data string) string {
	t.Helper()
	out, err := exec.Command(bin, "init", "--data", data, "-o", "json").Output()
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	var res struct{ User, Token string }
	if err := json.Unmarshal(out, &res); err != nil || res.Token == "" {
		t.Fatalf("init output %q: %v", out, err)
	}
	return res.Token
}

func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestKillNineLosesNothingCommitted creates users, kills the server with SIGKILL right after
// the last acknowledgement, restarts it, and finds every acknowledged user and audit event.
func TestKillNineLosesNothingCommitted(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	token := initData(t, bin, data)
	addr := freeAddr(t)
	s := startServer(t, bin, data, addr)
	base := "http://" + addr + "/api/v1"
	if code, b := call(t, "POST", base+"/ous", token, `{"name":"corp"}`); code != http.StatusCreated {
		t.Fatalf("create OU: %d %s", code, b)
	}
	const n = 200
	for i := 0; i < n; i++ {
		code, b := call(t, "POST", base+"/users", token, fmt.Sprintf(`{"username":"u%03d","ou":"corp"}`, i))
		if code != http.StatusCreated {
			t.Fatalf("create user %d: %d %s", i, code, b)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done

	startServer(t, bin, data, addr)
	code, b := call(t, "GET", base+"/users?limit=1000&filter="+strings.ReplaceAll(`username sw "u"`, " ", "%20"), token, "")
	if code != http.StatusOK {
		t.Fatalf("list users: %d %s", code, b)
	}
	var page struct{ Items []struct{ Username string } }
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != n {
		t.Fatalf("after kill -9: %d users, want %d", len(page.Items), n)
	}
	code, b = call(t, "GET", base+"/audit/events?action=user.create&outcome=applied&limit=1000", token, "")
	var events struct{ Items []json.RawMessage }
	if err := json.Unmarshal(b, &events); err != nil || code != http.StatusOK {
		t.Fatalf("list events: %d %s", code, b)
	}
	if len(events.Items) != n+1 { // the bootstrap admin, and the n users
		t.Errorf("after kill -9: %d user.create events, want %d", len(events.Items), n+1)
	}
}

// TestSIGTERMShutsDownGracefully checks that SIGTERM stops the server with exit status 0 after
// it says it is shutting down.
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	initData(t, bin, data)
	s := startServer(t, bin, data, freeAddr(t))
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server still running 20 s after SIGTERM")
	}
	sc := bufio.NewScanner(bytes.NewReader(s.stderr.Bytes()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "shutting down") {
			return
		}
	}
	t.Errorf("no shutdown message in stderr:\n%s", s.stderr)
}
