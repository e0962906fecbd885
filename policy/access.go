package policy

import (
	"net/http"
	"net/netip"
)

// accessList answers 403 to a client whose address is in deny, or not in
// allow when allow is set. A client without an IP address (a unix socket
// peer) is refused whenever allow is set.
func accessList(allow, deny []netip.Prefix, next http.Handler, reply replyFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := clientAddr(r)
		if ok && contains(deny, a) {
			reply(w, r, http.StatusForbidden, "client address denied (swarmgate.deny)")
			return
		}
		if len(allow) > 0 && (!ok || !contains(allow, a)) {
			reply(w, r, http.StatusForbidden, "client address not allowed (swarmgate.allow)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// replyFunc is Options.Reply.
type replyFunc = func(w http.ResponseWriter, r *http.Request, code int, reason string)
