package change

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Inverse builds the op that undoes an applied event, from what the event recorded. The op
// carries the version the event left the target at, so that it fails as stale (a conflict)
// when the object changed since; force leaves the version out and reverts regardless. Submitted
// like any op, the inverse is authorized, gated and audited on its own.
func Inverse(ev audit.Event, force bool) (Op, error) {
	if ev.Outcome != audit.Applied {
		return Op{}, notRevertible(ev, "it was %s: nothing was changed", ev.Outcome)
	}
	kind := directory.Kind(ev.Target.Type)
	op := Op{Target: directory.Ref{Kind: kind, ID: ev.Target.ID, Name: ev.Target.Name}}
	if !force {
		op.IfVersion = ev.Target.Version
	}
	action := delegation.Action(ev.Action)
	switch action {
	case delegation.OUUpdate, delegation.UserUpdate, delegation.GroupUpdate, delegation.SAUpdate:
		p, err := revertPatch(ev.Before, ev.After)
		if err != nil {
			return Op{}, notRevertible(ev, "%v", err)
		}
		op.Action, op.Patch = action, p
	case delegation.OUMove, delegation.UserMove, delegation.GroupMove, delegation.SAMove:
		key := "ou"
		if action == delegation.OUMove {
			key = "parent"
		}
		to, _ := refID(ev.Before[key]).(string)
		if to == "" {
			return Op{}, notRevertible(ev, "it records no %s it moved from", key)
		}
		op.Action, op.To = action, to
	case delegation.UserDisable:
		op.Action = delegation.UserEnable
	case delegation.UserEnable:
		op.Action = delegation.UserDisable
	case delegation.OUCreate:
		op.Action = delegation.OUDelete
	case delegation.UserCreate:
		op.Action = delegation.UserDelete
	case delegation.GroupCreate:
		op.Action = delegation.GroupDelete
	case delegation.SACreate:
		op.Action = delegation.SADelete
	case delegation.GroupAddMember, delegation.GroupRemoveMember:
		rec := ev.After
		if action == delegation.GroupRemoveMember {
			rec = ev.Before
		}
		m, _ := rec["member"].(map[string]any)
		mt, _ := m["type"].(string)
		mid, _ := m["id"].(string)
		if mid == "" {
			return Op{}, notRevertible(ev, "it records no member")
		}
		op.Member = memberKey(directory.Kind(mt), mid)
		op.Action = delegation.GroupRemoveMember
		if action == delegation.GroupRemoveMember {
			op.Action = delegation.GroupAddMember
			prov, err := recordedProvenance(rec["provenance"])
			if err != nil {
				return Op{}, notRevertible(ev, "%v", err)
			}
			op.Provenance = prov
		}
	case delegation.RoleAssign:
		op.Action = delegation.RoleRevoke
	case delegation.OUDelete:
		// An OU is deleted only when empty, so its fields are all there is to restore.
		name, _ := ev.Before["name"].(string)
		parent, _ := refID(ev.Before["parent"]).(string)
		protected, _ := ev.Before["protected"].(bool)
		if name == "" || parent == "" {
			return Op{}, notRevertible(ev, "it does not record the OU's name and parent")
		}
		op = Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name, Parent: parent, Protected: protected},
			RestoreID: ev.Target.ID}
	default:
		return Op{}, notRevertible(ev, "%s cannot be undone in this version (deleting a user, group or service account, issuing a token and changing roles are not)", ev.Action)
	}
	op.Justification = fmt.Sprintf("undo of event %d", ev.Index)
	return op, nil
}

func notRevertible(ev audit.Event, format string, args ...any) error {
	return directory.Invalid("index", "event %d cannot be undone: %s", ev.Index, fmt.Sprintf(format, args...))
}

// memberKey names a member for Op.Member by kind and ID.
func memberKey(kind directory.Kind, id string) string {
	switch kind {
	case directory.KindGroup:
		return "group:" + id
	case directory.KindServiceAccount:
		return "sa:" + id
	}
	return "user:" + id
}

// revertPatch is the merge patch that sets every attribute an update changed back to its value
// before: attributes it set from nothing are removed again. References (a manager, owners) go
// back by ID.
func revertPatch(before, after map[string]any) (directory.Patch, error) {
	p := directory.Patch{}
	attrs := map[string]any{}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for k := range keys {
		if k == "path" { // an OU's path follows its name
			continue
		}
		v := refID(before[k])
		if name, ok := strings.CutPrefix(k, "attributes."); ok {
			attrs[name] = v
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		p[k] = b
	}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return nil, err
		}
		p["attributes"] = b
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("it records no attribute it changed")
	}
	return p, nil
}

// refID turns a recorded reference ({"id", "name"}) into its ID, and a list of them into IDs;
// other values stay as they are.
func refID(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if id, ok := x["id"].(string); ok {
			return id
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = refID(e)
		}
		return out
	}
	return v
}

// recordedProvenance reads a membership's provenance as a removal recorded it.
func recordedProvenance(v any) (*directory.Provenance, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("it does not record the membership's provenance (removed before this version recorded it)")
	}
	p := &directory.Provenance{}
	p.Source, _ = m["source"].(string)
	p.SourceID, _ = m["source_id"].(string)
	if by, ok := m["by"].(map[string]any); ok {
		k, _ := by["type"].(string)
		p.By.Kind = directory.Kind(k)
		p.By.ID, _ = by["id"].(string)
		p.By.Name, _ = by["name"].(string)
	}
	at, _ := m["at"].(string)
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil || p.Source == "" {
		return nil, fmt.Errorf("its recorded provenance is incomplete")
	}
	p.At = t
	return p, nil
}
