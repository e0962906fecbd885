package policy

import (
	"net/http"
	"strconv"
)

// bodyLimit answers 413 to a request that declares a body over max, and
// cuts a streamed (chunked) body off at max: the reader fails with an
// *http.MaxBytesError, which the handler that forwards the body answers
// 413, and the upstream sees no byte beyond max.
func bodyLimit(max int64, next http.Handler, reply replyFunc) http.Handler {
	reason := "request body larger than " + strconv.FormatInt(max, 10) + " bytes (swarmgate.body.max)"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close") // the body is not read
			reply(w, r, http.StatusRequestEntityTooLarge, reason)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}
