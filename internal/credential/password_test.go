package credential

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"
)

// cheapArgon2 keeps tests fast where the cost does not matter; it is weaker than the default.
var cheapArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashPasswordFormat(t *testing.T) {
	enc, err := HashPassword("correct horse battery staple", DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(enc) {
		t.Fatalf("HashPassword = %q, want the PHC form %s", enc, re)
	}
	again, _ := HashPassword("correct horse battery staple", DefaultArgon2)
	if again == enc {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

// The vector of the argon2 reference implementation's test.c (argon2id, v=19, m=64 MiB, t=2,
// p=1, password "password", salt "somesalt"): our parser and hasher agree with it.
func TestVerifyPasswordReferenceVector(t *testing.T) {
	const enc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, rehash, err := VerifyPassword("password", enc)
	if err != nil || !ok {
		t.Fatalf("VerifyPassword(reference vector) = %v, %v, %v; want ok", ok, rehash, err)
	}
	if !rehash {
		t.Error("an 8-byte salt is weaker than the default 16 bytes: want needsRehash")
	}
}

func TestPasswordRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, pw, wrong string }{
		{"ascii", "correct horse battery staple", "correct horse battery stapl"},
		{"case", "Tr0ub4dor&3", "tr0ub4dor&3"},
		{"unicode", "żółć gęślą jaźń 🔑", "zolc gesla jazn 🔑"},
		{"empty", "", " "},
		{"trailing space", "pass phrase ", "pass phrase"},
		{"long", strings.Repeat("long words ", 100), strings.Repeat("long words ", 99)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := HashPassword(tc.pw, cheapArgon2)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _, err := VerifyPassword(tc.pw, enc); !ok || err != nil {
				t.Errorf("VerifyPassword(right) = %v, %v; want true, nil", ok, err)
			}
			if ok, rehash, err := VerifyPassword(tc.wrong, enc); ok || rehash || err != nil {
				t.Errorf("VerifyPassword(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestPasswordNormalization(t *testing.T) {
	composed := "café crème brûlée"
	decomposed := norm.NFD.String(composed)
	if composed == decomposed {
		t.Fatal("test setup: NFD did not change the string")
	}
	enc, err := HashPassword(decomposed, cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := VerifyPassword(composed, enc); !ok || err != nil {
		t.Errorf("the composed form of a password hashed decomposed does not verify: %v, %v", ok, err)
	}
}

func TestVerifyPasswordNeedsRehash(t *testing.T) {
	d := DefaultArgon2
	with := func(f func(*Argon2Params)) Argon2Params { p := d; f(&p); return p }
	for _, tc := range []struct {
		name string
		p    Argon2Params
		want bool
	}{
		{"default", d, false},
		{"stronger memory", with(func(p *Argon2Params) { p.Memory = 32 * 1024 }), false},
		{"stronger time and lanes", with(func(p *Argon2Params) { p.Time, p.Threads = 3, 2 }), false},
		{"weaker memory", with(func(p *Argon2Params) { p.Memory = 4096 }), true},
		{"weaker time", with(func(p *Argon2Params) { p.Time = 1 }), true},
		{"shorter hash", with(func(p *Argon2Params) { p.KeyLen = 16 }), true},
		{"shorter salt", with(func(p *Argon2Params) { p.SaltLen = 8 }), true},
		{"cheap", cheapArgon2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := HashPassword("rehash me please", tc.p)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := VerifyPassword("rehash me please", enc)
			if !ok || err != nil || rehash != tc.want {
				t.Errorf("VerifyPassword = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.want)
			}
		})
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	for _, p := range []Argon2Params{
		{},
		{Memory: 19456, Time: 0, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 19456, Time: 11, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 19456, Time: 2, Threads: 0, KeyLen: 32, SaltLen: 16},
		{Memory: 19456, Time: 2, Threads: 17, KeyLen: 32, SaltLen: 16},
		{Memory: 7, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 1<<20 + 1, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16},
		{Memory: 19456, Time: 2, Threads: 1, KeyLen: 8, SaltLen: 16},
		{Memory: 19456, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 4},
	} {
		if enc, err := HashPassword("x", p); err == nil {
			t.Errorf("HashPassword(%+v) = %q, want an error", p, enc)
		}
	}
}

// A valid cheap hash whose fields the malformed cases below take apart.
const (
	goodSalt = "c29tZXNhbHRzb21lc2FsdA"                      // 16 bytes
	goodKey  = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI" // 32 bytes
)

func TestVerifyPasswordMalformed(t *testing.T) {
	tail := "$" + goodSalt + "$" + goodKey
	for _, tc := range []struct{ name, enc string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1" + tail},
		{"argon2d", "$argon2d$v=19$m=64,t=1,p=1" + tail},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1" + tail},
		{"no version", "$argon2id$m=64,t=1,p=1" + tail},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1" + tail},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,k=abc" + tail},
		{"missing param", "$argon2id$v=19$m=64,t=1" + tail},
		{"spaces", "$argon2id$v=19$m=64, t=1, p=1" + tail},
		{"signed", "$argon2id$v=19$m=+64,t=1,p=1" + tail},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1" + tail},
		{"not a number", "$argon2id$v=19$m=6x4,t=1,p=1" + tail},
		{"time 0", "$argon2id$v=19$m=64,t=0,p=1" + tail},
		{"lanes 0", "$argon2id$v=19$m=64,t=1,p=0" + tail},
		{"memory below 8 per lane", "$argon2id$v=19$m=15,t=1,p=2" + tail},
		{"no hash", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt},
		{"empty hash", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$"},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1" + tail + "$x"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "==$" + goodKey},
		{"url base64", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.ReplaceAll(goodKey, "M", "_")},
		{"bad base64", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + goodKey + "!"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c29tZQ$" + goodKey},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$MTIzNDU2Nzg"},
		{"long salt", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 90) + "$" + goodKey},
		{"huge string", "$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.Repeat("A", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword("password", tc.enc)
			if ok || rehash || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v, %v; want false, false, ErrMalformedHash", tc.enc, ok, rehash, err)
			}
		})
	}
	// The good hash itself parses: the cases above fail for their own reason.
	if _, _, err := VerifyPassword("password", "$argon2id$v=19$m=64,t=1,p=1"+tail); err != nil {
		t.Fatalf("the reference good hash does not parse: %v", err)
	}
}

// A hostile stored value asking for more than the bounds is refused before argon2 allocates
// its memory (here up to 4 GiB), and before it spends the time.
func TestVerifyPasswordHostileParams(t *testing.T) {
	tail := "$" + goodSalt + "$" + goodKey
	for _, enc := range []string{
		"$argon2id$v=19$m=4194304,t=1,p=1" + tail,                                  // 4 GiB
		"$argon2id$v=19$m=1048577,t=1,p=1" + tail,                                  // 1 GiB + 1 KiB
		"$argon2id$v=19$m=4294967295,t=1,p=1" + tail,                               // max uint32
		"$argon2id$v=19$m=99999999999,t=1,p=1" + tail,                              // overflows uint32
		"$argon2id$v=19$m=64,t=4294967295,p=1" + tail,                              // time forever
		"$argon2id$v=19$m=64,t=11,p=1" + tail,                                      // above the time bound
		"$argon2id$v=19$m=1048576,t=1,p=255" + tail,                                // 255 lanes
		"$argon2id$v=19$m=64,t=1,p=1$" + goodSalt + "$" + strings.Repeat("A", 400), // 300-byte key
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		const runs = 10
		for range runs {
			if ok, _, err := VerifyPassword("password", enc); ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want ErrMalformedHash", enc, ok, err)
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4<<10 {
			t.Errorf("VerifyPassword(%q) allocated %d bytes per run, want a refusal without argon2 memory", enc, perRun)
		}
		if elapsed > 100*time.Millisecond {
			t.Errorf("refusing %q took %v for %d runs", enc, elapsed, runs)
		}
	}
}

// The comparison of hashes goes through crypto/subtle, never bytes.Equal or a loop that stops at
// the first difference. Timing tests of a 32-byte comparison are noise, so read the source.
func TestConstantTimeComparisons(t *testing.T) {
	for file, funcs := range map[string][]string{
		"password.go": {"VerifyPassword"},
		"totp.go":     {"MatchTOTP"},
	} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || !slices.Contains(funcs, fn.Name.Name) {
				continue
			}
			var calls []string
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok {
						calls = append(calls, id.Name+"."+sel.Sel.Name)
					}
				}
				return true
			})
			if !slices.Contains(calls, "subtle.ConstantTimeCompare") {
				t.Errorf("%s does not call subtle.ConstantTimeCompare (calls %v)", fn.Name.Name, calls)
			}
			for _, bad := range []string{"bytes.Equal", "bytes.Compare", "hmac.Equal"} {
				if slices.Contains(calls, bad) {
					t.Errorf("%s calls %s", fn.Name.Name, bad)
				}
			}
			funcs = slices.DeleteFunc(funcs, func(s string) bool { return s == fn.Name.Name })
		}
		if len(funcs) > 0 {
			t.Errorf("%s: functions %v not found", file, funcs)
		}
	}
}

// DummyVerify must cost what a real verification costs, or timing tells accounts apart.
func TestDummyVerifyTakesAsLongAsVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	enc, err := HashPassword("the real password", DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	// The fastest of several runs is stable under a busy machine; a mean is not.
	fastest := func(f func()) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	real := fastest(func() { _, _, _ = VerifyPassword("a wrong password", enc) })
	dummy := fastest(func() { DummyVerify("a wrong password") })
	if ratio := float64(dummy) / float64(real); ratio < 0.5 || ratio > 2 {
		t.Errorf("DummyVerify takes %v, VerifyPassword %v: want about the same", dummy, real)
	}
}

func TestNewTemporaryPassword(t *testing.T) {
	re := regexp.MustCompile(`^[` + tempAlphabet + `]{5}(-[` + tempAlphabet + `]{5}){3}$`)
	seen := make(map[string]bool)
	var policy PasswordPolicy
	for range 1000 {
		pw := NewTemporaryPassword()
		if !re.MatchString(pw) {
			t.Fatalf("NewTemporaryPassword = %q, want 4 groups of 5 from %q", pw, tempAlphabet)
		}
		if seen[pw] {
			t.Fatalf("NewTemporaryPassword repeated %q", pw)
		}
		seen[pw] = true
		if err := policy.Check(pw); err != nil {
			t.Fatalf("NewTemporaryPassword = %q fails the default policy: %v", pw, err)
		}
	}
	if len(tempAlphabet) != 32 || strings.ContainsAny(tempAlphabet, "01lo") {
		t.Errorf("alphabet %q: want 32 symbols, none of 0, 1, l, o", tempAlphabet)
	}
	// 20 symbols of 5 bits each: 100 bits. Every symbol must turn up, or some bits are lost.
	var all strings.Builder
	for pw := range seen {
		all.WriteString(pw)
	}
	for _, r := range tempAlphabet {
		if !strings.ContainsRune(all.String(), r) {
			t.Errorf("symbol %q never appears in 1000 passwords", r)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple", DefaultArgon2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	enc, err := HashPassword("correct horse battery staple", DefaultArgon2)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := VerifyPassword("correct horse battery staple", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
