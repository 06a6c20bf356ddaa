package audit

import (
	"strings"
	"testing"
	"time"
)

func TestSIEMFormats(t *testing.T) {
	e := &Event{Index: 7, Time: time.Date(2026, 11, 28, 9, 30, 0, 123000000, time.UTC),
		Actor: Principal{Type: "user", ID: "u1", Name: "helen"}, Action: "user.reset_password",
		Target: Target{Type: "user", ID: "u2", Name: `ev|il=na\me]"`}, Outcome: Denied, Reason: "escalation",
		Message: "line one\nline two", Authority: Authority{Assignments: []string{"a1", "a2"}}, Transport: TransportAPI,
		ClientAddr: "10.0.0.1"}
	cef := CEF(e, "1.2|3")
	for _, want := range []string{
		`CEF:0|Deputy|Deputy|1.2\|3|user.reset_password|user.reset_password denied|6|`,
		`rt=1795858200123`, `externalId=7`, `suser=helen`, `duser=ev|il\=na\\me]"`, `cs2=escalation`, `cs3=a1,a2`,
		`msg=line one\nline two`, `src=10.0.0.1`,
	} {
		if !strings.Contains(cef, want) {
			t.Errorf("CEF lacks %q:\n%s", want, cef)
		}
	}
	if strings.Contains(cef, "\n") {
		t.Errorf("CEF spans lines: %q", cef)
	}
	canonical, _ := Encode(e)
	sys := RFC5424(e, canonical, "host1")
	for _, want := range []string{
		`<84>1 2026-11-28T09:30:00.123Z host1 deputy - user.reset_password [deputy@32473 index="7" actor="helen"`,
		`target="ev|il=na\\me\]\""`, `outcome="denied"`, "] \ufeff{\"index\":7,",
	} {
		if !strings.Contains(sys, want) {
			t.Errorf("RFC 5424 lacks %q:\n%s", want, sys)
		}
	}
	applied := *e
	applied.Outcome = Applied
	if got := RFC5424(&applied, canonical, ""); !strings.HasPrefix(got, "<86>1 ") || !strings.Contains(got, " - deputy - ") {
		t.Errorf("applied, no hostname: %s", got)
	}
	if got := msgID(strings.Repeat("x", 40) + " y"); len(got) != 32 {
		t.Errorf("msgID %q", got)
	}
}
