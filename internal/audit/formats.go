package audit

import (
	"fmt"
	"strings"
	"time"
)

// Export formats: the canonical JSON lines (what verify reads back), and two that SIEMs ingest
// directly. The latter are renderings for search and alerting, not evidence: only the
// canonical encoding hashes to the log's leaves.
const (
	FormatJSONL   = "jsonl"
	FormatCEF     = "cef"
	FormatRFC5424 = "rfc5424"
)

// Formats lists the export formats.
var Formats = []string{FormatJSONL, FormatCEF, FormatRFC5424}

// severity ranks an outcome for a SIEM: a denial is what an analyst looks at first.
func severity(o Outcome) (cef int, syslog int) {
	switch o {
	case Denied:
		return 6, 4 // warning
	case Failed:
		return 4, 5 // notice
	default:
		return 2, 6 // informational
	}
}

var cefHeader = strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\n", " ", "\r", " ")
var cefValue = strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\n", `\n`, "\r", `\r`)

// CEF renders e as one ArcSight Common Event Format line (without a trailing newline).
func CEF(e *Event, version string) string {
	sev, _ := severity(e.Outcome)
	var b strings.Builder
	fmt.Fprintf(&b, "CEF:0|Deputy|Deputy|%s|%s|%s %s|%d|", cefHeader.Replace(version), cefHeader.Replace(e.Action),
		cefHeader.Replace(e.Action), e.Outcome, sev)
	ext := [][2]string{
		{"rt", fmt.Sprint(e.Time.UnixMilli())},
		{"externalId", fmt.Sprint(e.Index)},
		{"act", e.Action},
		{"outcome", string(e.Outcome)},
		{"suser", e.Actor.Name},
		{"suid", e.Actor.ID},
		{"duser", e.Target.Name},
		{"duid", e.Target.ID},
		{"src", e.ClientAddr},
		{"requestClientApplication", e.UserAgent},
		{"msg", e.Message},
	}
	// Custom strings carry their label, and both are left out when the value is empty.
	for i, kv := range [][2]string{{"targetType", e.Target.Type}, {"reason", e.Reason}, {"authority", authorityText(e.Authority)},
		{"transport", e.Transport}, {"requestId", e.RequestID}} {
		if kv[1] != "" {
			ext = append(ext, [2]string{fmt.Sprintf("cs%dLabel", i+1), kv[0]}, [2]string{fmt.Sprintf("cs%d", i+1), kv[1]})
		}
	}
	sep := ""
	for _, kv := range ext {
		if kv[1] == "" {
			continue
		}
		fmt.Fprintf(&b, "%s%s=%s", sep, kv[0], cefValue.Replace(kv[1]))
		sep = " "
	}
	return b.String()
}

var sdValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// SDID is the structured-data ID of Deputy's syslog messages. 32473 is the private enterprise
// number IANA reserves for examples (RFC 5612); Deputy has none of its own yet.
const SDID = "deputy@32473"

// RFC5424 renders e as one RFC 5424 syslog message (facility authpriv; without framing or a
// trailing newline): the key fields as structured data and the canonical encoding as the
// message, so a SIEM keeps the evidence too.
func RFC5424(e *Event, canonical []byte, hostname string) string {
	_, sev := severity(e.Outcome)
	const authpriv = 10
	if hostname == "" {
		hostname = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s deputy - %s [%s", authpriv*8+sev, e.Time.UTC().Format(time.RFC3339Nano), hostname,
		msgID(e.Action), SDID)
	for _, kv := range [][2]string{{"index", fmt.Sprint(e.Index)}, {"actor", e.Actor.Name}, {"actor_id", e.Actor.ID},
		{"action", e.Action}, {"target", e.Target.Name}, {"target_id", e.Target.ID}, {"outcome", string(e.Outcome)},
		{"reason", e.Reason}, {"transport", e.Transport}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, ` %s="%s"`, kv[0], sdValue.Replace(kv[1]))
		}
	}
	b.WriteString("] \ufeff")
	b.Write(canonical)
	return b.String()
}

// msgID is the action as an RFC 5424 MSGID: printable US-ASCII, at most 32 characters.
func msgID(action string) string {
	out := []byte(action)
	for i, c := range out {
		if c < 33 || c > 126 {
			out[i] = '_'
		}
	}
	if len(out) > 32 {
		out = out[:32]
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// authorityText is the authority in one field: the assignment IDs, or the rule.
func authorityText(a Authority) string {
	if len(a.Assignments) > 0 {
		return strings.Join(a.Assignments, ",")
	}
	return a.Rule
}
