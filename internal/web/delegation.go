package web

import "net/http"

// registerDelegation adds the pages of delegation: roles, assignments (grant with a preview, activate an eligible one), who can act on an object, and the escalation-path report.
func (s *Server) registerDelegation(mux *http.ServeMux) {
	_ = mux
}
