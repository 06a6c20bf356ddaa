package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// client talks to a Deputy server's REST API.
type client struct {
	base          string
	token         string
	output        string
	justification string
	totp          string
	ifMatch       string
	http          *http.Client
}

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	server, token, output, justification, totp string
}

// addClientFlags adds the client flags to cmd; writes adds --justification, which only commands
// that change something take.
func (e *env) addClientFlags(cmd *cobra.Command, f *clientFlags, writes bool) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "Deputy server URL (env DEPUTY_SERVER; default http://127.0.0.1:8080)")
	pf.StringVar(&f.token, "token", "", "API token (env DEPUTY_TOKEN)")
	pf.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	if writes {
		pf.StringVar(&f.justification, "justification", "", "why you make this change (recorded in the audit trail)")
		pf.StringVar(&f.totp, "totp", "", "a current code from your authenticator, for actions that need a fresh second factor (env DEPUTY_TOTP)")
	}
}

// newClient builds a client from the flags and the environment.
func (e *env) newClient(f *clientFlags) (*client, error) {
	server := firstNonEmpty(f.server, e.getenv("DEPUTY_SERVER"), "http://127.0.0.1:8080")
	token := firstNonEmpty(f.token, e.getenv("DEPUTY_TOKEN"))
	if token == "" {
		return nil, fmt.Errorf("no API token: pass --token or set DEPUTY_TOKEN (deputy init prints one)")
	}
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", f.output)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8080", server)
	}
	return &client{base: strings.TrimSuffix(server, "/"), token: token, output: f.output,
		justification: f.justification, totp: firstNonEmpty(f.totp, e.getenv("DEPUTY_TOTP")), http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// fetchPage makes a client from the flags and sends one request for a list, returning the
// client (to print with) and the page.
func (e *env) fetchPage(cmd *cobra.Command, f *clientFlags, method, path string, q url.Values) (*client, page, error) {
	var p page
	c, err := e.newClient(f)
	if err != nil {
		return nil, p, err
	}
	err = c.call(cmd.Context(), method, path, q, nil, &p)
	return c, p, err
}

// fetchOne makes a client from the flags and reads one object at path.
func (e *env) fetchOne(cmd *cobra.Command, f *clientFlags, path string) (*client, map[string]any, error) {
	c, err := e.newClient(f)
	if err != nil {
		return nil, nil, err
	}
	var obj map[string]any
	err = c.call(cmd.Context(), "GET", path, nil, nil, &obj)
	return c, obj, err
}

// problem is the RFC 9457 body of an error response.
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// call sends a request and decodes a JSON answer into out (when non-nil). A 202 (parked for
// approval) and every error status become an exitError with the right exit code.
func (c *client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return &exitError{code: ExitParked, msg: parkedMessage(data)}
	case resp.StatusCode >= 400:
		return responseError(resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	return nil
}

// request builds a request to the API with the client's token, identity and headers; body, when
// not nil, is sent as JSON.
func (c *client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "deputy-cli/"+Version)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.justification != "" {
		req.Header.Set("Deputy-Justification", c.justification)
	}
	if c.totp != "" {
		req.Header.Set("Deputy-TOTP", c.totp) // the step-up for takeover actions and activations
	}
	if c.ifMatch != "" {
		req.Header.Set("If-Match", `"`+c.ifMatch+`"`)
	}
	return req, nil
}

// responseError renders an error response in one line, with exit code 3 for a denial.
func responseError(status int, data []byte) error {
	var p problem
	if err := json.Unmarshal(data, &p); err != nil || p.Title == "" {
		return &exitError{code: ExitError, msg: fmt.Sprintf("%d %s", status, http.StatusText(status))}
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	if p.Code != "" {
		msg = fmt.Sprintf("%s (%s)", msg, p.Code)
	}
	code := ExitError
	if status == http.StatusForbidden {
		code = ExitDenied
	}
	return &exitError{code: code, msg: msg}
}

// parseVersion reads an --if-match value: an object's version as its "version" field or its
// ETag shows it (3, "3" or W/"3"). It returns the bare number, "" for an empty value.
func parseVersion(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	v := strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`)
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("--if-match %q: want the version the object must still have, a number such as 3", s)
	}
	return v, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
