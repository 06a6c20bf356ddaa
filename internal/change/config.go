package change

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ReplaceDocument stores a configuration document under key (the lifecycle rules) for a tier-0
// admin, or a system actor at start, with an audit event named action that records the document
// before and after, in the same transaction. A document equal to the stored one records
// nothing. The caller has checked the document.
func (p *Pipeline) ReplaceDocument(ctx context.Context, actor delegation.Actor, meta Meta, key, action string, doc json.RawMessage) error {
	op := Op{Action: delegation.Action(action), Target: directory.Ref{Kind: directory.KindConfig, Name: key}}
	if actor.Kind != delegation.ActorSystem && (p.gate == nil || !p.gate.IsTier0(actor.ID)) {
		return p.Refuse(ctx, actor, meta, op, delegation.ReasonNotAuthorized, "only a tier-0 admin may change "+key)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return directory.Invalid("body", "%v", err)
	}
	err := p.store.InTx(ctx, func(tx Tx) error {
		cur, _, err := tx.Setting(ctx, key)
		if err != nil {
			return err
		}
		if cur == compact.String() {
			return errPoliciesSame
		}
		if err := tx.SetSetting(ctx, key, compact.String()); err != nil {
			return err
		}
		ev := p.event(actor, meta, &op, op.Target, audit.Timestamp(p.now()))
		ev.Outcome, ev.Authority.Rule = audit.Applied, "tier0"
		if actor.Kind == delegation.ActorSystem {
			ev.Authority.Rule = "configuration"
		}
		ev.After = map[string]any{"document": decoded(compact.Bytes())}
		if cur != "" {
			ev.Before = map[string]any{"document": decoded([]byte(cur))}
		}
		_, err = tx.AppendEvent(ctx, ev)
		return err
	})
	if errors.Is(err, errPoliciesSame) {
		return nil
	}
	return err
}

// decoded is a JSON document as plain values, so that the event's canonical encoding (sorted
// keys) is the same however the document was written.
func decoded(b []byte) any {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	return v
}
