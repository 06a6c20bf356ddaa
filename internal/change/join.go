package change

import (
	"context"
	"net/url"
	"strings"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// ActionRequestJoin records that someone asked a group's owners to be added to it.
const ActionRequestJoin = "group.request_join"

// RequestJoin asks a group's owners to add the actor (a user) to it: a notification to each
// owner, with the reason and a link to the group's page, and its audit event, in one
// transaction. It grants nothing: an owner (or anyone who may add members there) adds them
// through the pipeline as any change, authorized, gated and audited in their own name. This is
// how a delegate who may see a group, but not add themselves (self-escalation), asks for it.
// portal is the portal's address for the link ("" leaves the path alone).
func (p *Pipeline) RequestJoin(ctx context.Context, actor delegation.Actor, meta Meta, group directory.Ref, justification, portal string) (int64, error) {
	justification = strings.TrimSpace(justification)
	if actor.Kind != delegation.ActorUser {
		return 0, directory.Invalid("", "only a person may ask to join a group")
	}
	if justification == "" {
		return 0, directory.Invalid("justification", "is required: say why you need to be a member")
	}
	var idx int64
	err := p.store.InTx(ctx, func(tx Tx) error {
		g, err := tx.Group(ctx, group)
		if err != nil {
			return err
		}
		me := directory.Ref{Kind: directory.KindUser, ID: actor.ID, Name: actor.Name}
		if _, member, err := tx.Membership(ctx, g.ID, me); err != nil {
			return err
		} else if member {
			return directory.Conflict("", "you are a member of %s already", g.Name)
		}
		var to []string
		for _, o := range g.Owners {
			if o.ID != actor.ID {
				to = append(to, o.ID)
			}
		}
		if len(to) == 0 {
			return directory.Conflict("", "%s has no owner to ask: ask the helpdesk or an admin", g.Name)
		}
		link := portal + "/groups/" + url.PathEscape(g.Name) + "?add=" + url.QueryEscape(actor.Name)
		if err := notify(ctx, tx, 0, Notification{Kind: "join_request", To: to,
			Subject: actor.Name + " asks to join " + g.Name,
			Body:    "Why: " + justification + "\nTo add them (if you agree), open " + link}); err != nil {
			return err
		}
		ev := p.event(actor, meta, &Op{Action: ActionRequestJoin, Justification: justification}, g.Ref(), audit.Timestamp(p.now()))
		ev.Outcome, ev.Authority.Rule = audit.Applied, "self"
		ev.Message = "asked the owners to be added"
		idx, err = tx.AppendEvent(ctx, ev)
		return err
	})
	return idx, err
}
