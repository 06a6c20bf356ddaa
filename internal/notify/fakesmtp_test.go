package notify

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// fakeSMTP is a minimal SMTP server on a loopback listener that records what it is sent:
// EHLO, optional STARTTLS, optional AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type fakeSMTP struct {
	ln        net.Listener
	opts      fakeSMTPOptions
	serverTLS *tls.Config
	clientTLS *tls.Config // trusts the server's certificate

	mu   sync.Mutex
	sess []*fakeSession
	wg   sync.WaitGroup
}

type fakeSMTPOptions struct {
	startTLS   bool            // offer STARTTLS
	auth       bool            // offer AUTH PLAIN
	refuseAuth bool            // answer every AUTH with 535
	refuse     map[string]bool // recipients refused with 550
}

type fakeSession struct {
	tls   bool
	auth  string // the decoded PLAIN response
	mails []fakeMail
}

type fakeMail struct {
	from string
	to   []string
	data string // with LF line ends, as textproto reads it
}

func newFakeSMTP(t *testing.T, opts fakeSMTPOptions) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.refuse == nil {
		opts.refuse = map[string]bool{}
	}
	f := &fakeSMTP{ln: ln, opts: opts}
	if opts.startTLS {
		// httptest's certificate is valid for 127.0.0.1.
		ts := httptest.NewUnstartedServer(nil)
		ts.StartTLS()
		f.serverTLS = &tls.Config{Certificates: ts.TLS.Certificates}
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		f.clientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		ts.Close()
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeSMTP) addr() string { return f.ln.Addr().String() }

// accept stops refusing addr.
func (f *fakeSMTP) accept(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.opts.refuse, addr)
}

func (f *fakeSMTP) sessions() []fakeSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeSession
	for _, s := range f.sess {
		out = append(out, *s)
	}
	return out
}

func (f *fakeSMTP) mails() []fakeMail {
	var out []fakeMail
	for _, s := range f.sessions() {
		out = append(out, s.mails...)
	}
	return out
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer func() { c.Close() }()
	tp := textproto.NewConn(c)
	s := &fakeSession{}
	f.mu.Lock()
	f.sess = append(f.sess, s)
	f.mu.Unlock()
	var cur fakeMail
	reply := func(format string, args ...any) bool { return tp.PrintfLine(format, args...) == nil }
	if !reply("220 fake ESMTP") {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		f.mu.Lock()
		ok := true
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := []string{"250-fake greets you"}
			if f.serverTLS != nil && !s.tls {
				ext = append(ext, "250-STARTTLS")
			}
			if f.opts.auth {
				ext = append(ext, "250-AUTH PLAIN")
			}
			ok = reply("%s\r\n250 8BITMIME", strings.Join(ext, "\r\n"))
		case "HELO", "NOOP":
			ok = reply("250 ok")
		case "STARTTLS":
			if f.serverTLS == nil || s.tls {
				ok = reply("502 no")
				break
			}
			if !reply("220 go ahead") {
				ok = false
				break
			}
			tc := tls.Server(c, f.serverTLS)
			if err := tc.Handshake(); err != nil {
				ok = false
				break
			}
			c, tp, s.tls = tc, textproto.NewConn(tc), true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(resp)
			switch {
			case !f.opts.auth || mech != "PLAIN" || err != nil:
				ok = reply("504 unsupported")
			case f.opts.refuseAuth:
				ok = reply("535 5.7.8 authentication failed")
			default:
				s.auth = string(raw)
				ok = reply("235 ok")
			}
		case "MAIL":
			cur = fakeMail{from: between(arg, "<", ">")}
			ok = reply("250 ok")
		case "RCPT":
			to := between(arg, "<", ">")
			if f.opts.refuse[to] {
				ok = reply("550 5.1.1 no such mailbox")
				break
			}
			cur.to = append(cur.to, to)
			ok = reply("250 ok")
		case "DATA":
			f.mu.Unlock()
			data, err := func() ([]byte, error) {
				if err := tp.PrintfLine("354 go ahead"); err != nil {
					return nil, err
				}
				return tp.ReadDotBytes()
			}()
			f.mu.Lock()
			if err != nil {
				ok = false
				break
			}
			cur.data = string(data)
			s.mails = append(s.mails, cur)
			cur = fakeMail{}
			ok = reply("250 queued")
		case "RSET":
			cur = fakeMail{}
			ok = reply("250 ok")
		case "QUIT":
			reply("221 bye")
			ok = false
		default:
			ok = reply("502 unknown command")
		}
		f.mu.Unlock()
		if !ok {
			return
		}
	}
}

// between returns the part of s between the first open and the next close.
func between(s, open, close string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, close)
	return v
}
