package api

import (
	"net/http"
	"time"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/filter"
	"github.com/deputy-iam/deputy/internal/httpx"
)

func (s *Server) listMembers(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, ok := s.readVisible(w, r, k, k.ref(r))
		if !ok {
			return
		}
		q, err := listQuery(r, directory.MemberSchema)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		page, err := s.dir.Members(r.Context(), l.ref, q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, viewPage(page, viewMember))
	}
}

func (s *Server) addMember(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in memberInput
		if err := httpx.Decode(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		res, ok := s.submit(w, r, change.Op{Action: delegation.GroupAddMember, Target: k.ref(r), Member: in.Member})
		if !ok {
			return
		}
		// Answer with the new membership as the member list shows it.
		member, err := directory.ParseMemberRef(in.Member)
		if err == nil {
			member, err = s.dir.ResolveMember(r.Context(), member)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		page, err := s.dir.Members(r.Context(), res.Target, directory.ListQuery{Limit: directory.MaxLimit,
			Filter: idFilter(member.ID)})
		if err != nil || len(page.Items) == 0 {
			s.fail(w, r, errOr(err, directory.NotFound(member.Kind, member.Name)))
			return
		}
		written(w, http.StatusCreated, k.base+"/"+res.Target.ID+"/members/"+member.ID, res.Version, viewMember(page.Items[0]))
	}
}

func (s *Server) removeMember(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, ok := s.submit(w, r, change.Op{Action: delegation.GroupRemoveMember, Target: k.ref(r), Member: r.PathValue("member")})
		if ok {
			w.Header().Set("ETag", httpx.ETag(res.Version))
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

type tokenView struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	User    string    `json:"user"`
	Expires time.Time `json:"expires"`
}

func (s *Server) issueToken(k *kindAPI) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in change.TokenInput
		if err := httpx.Decode(w, r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		ref := k.ref(r)
		if a := actor(r); ref.ID == "" && ref.Name != "" && directory.CanonicalKey(ref.Name) == directory.CanonicalKey(a.Name) {
			ref = directory.Ref{Kind: directory.KindUser, ID: a.ID, Name: a.Name}
		}
		res, ok := s.submit(w, r, change.Op{Action: delegation.UserIssueToken, Target: ref, Token: &in})
		if !ok {
			return
		}
		c := res.Credential
		httpx.WriteJSON(w, http.StatusCreated, tokenView{Token: c.Secret, ID: c.ID, Name: in.Name, User: res.Target.Name,
			Expires: c.Expires})
	}
}

// idFilter selects the object with id.
func idFilter(id string) filter.Expr {
	return &filter.Compare{Attr: "id", Type: filter.String, Op: filter.Eq, Value: id}
}

// errOr returns err when set, else fallback.
func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}
