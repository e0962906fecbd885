package policy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"sync"

	"github.com/swarmgate/swarmgate/route"
)

// maxVerified bounds the credentials a basic-auth route remembers as
// checked; the cache is emptied when full.
const maxVerified = 1024

// authenticator checks basic credentials against password hashes (bcrypt,
// MD5-apr1, SHA-1: htpasswd.go). A browser sends its credentials on every
// request, and bcrypt costs tens of milliseconds by design, so credentials
// that passed are remembered (as a keyed hash, never in the clear) and
// later requests cost one HMAC.
type authenticator struct {
	users map[string]route.Secret
	// decoy is the slowest of the hashes, checked for unknown users so
	// that they take as long as the slowest known one.
	decoy route.Secret
	key   [32]byte

	// mu guards verified.
	mu       sync.Mutex
	verified map[[32]byte]bool
}

func newAuthenticator(users map[string]route.Secret) *authenticator {
	a := &authenticator{users: users, verified: map[[32]byte]bool{}}
	rand.Read(a.key[:])
	for _, h := range users {
		if a.decoy == "" || cost(h) > cost(a.decoy) {
			a.decoy = h
		}
	}
	return a
}

func (a *authenticator) check(user, pass string) bool {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var sum [32]byte
	mac.Sum(sum[:0])
	a.mu.Lock()
	ok := a.verified[sum]
	a.mu.Unlock()
	if ok {
		return true
	}
	hash, known := a.users[user]
	if !known {
		verify(a.decoy, pass)
		return false
	}
	if !verify(hash, pass) {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		clear(a.verified)
	}
	a.verified[sum] = true
	a.mu.Unlock()
	return true
}

// basicAuth answers 401 with a Basic challenge (RFC 7617) to requests
// without valid credentials, and removes the Authorization field from
// those it lets through: the upstream never sees the password.
func basicAuth(users map[string]route.Secret, realm string, next http.Handler, reply replyFunc) http.Handler {
	a := newAuthenticator(users)
	challenge := `Basic realm="` + realm + `", charset="UTF-8"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || !a.check(user, pass) {
			w.Header().Set("WWW-Authenticate", challenge)
			reason := "no credentials"
			if ok {
				reason = "wrong credentials"
			}
			reply(w, r, http.StatusUnauthorized, reason)
			return
		}
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}
