package policy

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarmgate/swarmgate/route"
)

// Password hashes: the three kinds of htpasswd lines that Apache's
// htpasswd writes and Traefik's basicauth reads, for swarmgate.auth.basic
// files and swarmgate.auth.users (Traefik's basicauth.users) alike.
//
//	bcrypt   $2y$, $2a$, $2b$   htpasswd -nbB user pass   (recommended)
//	MD5      $apr1$ (and $1$)   htpasswd -nb user pass    (Apache's default; weak)
//	SHA-1    {SHA}              htpasswd -nbs user pass   (unsalted; weak)
//
// Errors name the user, never the hash: they reach the log, check and the
// admin API.

// Hash kinds, as errors and warnings name them.
const (
	hashBcrypt = "bcrypt"
	hashMD5    = "MD5 (apr1)"
	hashSHA1   = "SHA-1"
)

// maxUsers bounds the users of one swarmgate.auth.users label.
const maxUsers = 1000

// ParseUsers parses swarmgate.auth.users (and Traefik's basicauth.users): a
// comma list of user:hash, as `htpasswd -nb` prints them, one hash per
// user. The value is as Docker stores it: a stack file's "$$" is "$" by
// then, so a "$$" left in a hash is an error that says so.
func ParseUsers(v string) ([]route.BasicUser, error) {
	items := strings.Split(v, ",")
	if len(items) > maxUsers {
		return nil, fmt.Errorf("more than %d users", maxUsers)
	}
	users := make([]route.BasicUser, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("entry %d is empty: want user:hash,user:hash", i+1)
		}
		u, err := parseUser(item, users)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		users = append(users, u)
	}
	return users, nil
}

// ParseHtpasswd parses an htpasswd file: user:hash lines, blank lines and
// # comments ignored, in the order of the file. A line that cannot be
// served (a crypt or plain-text password, a hash of another kind) refuses
// the file as a whole, rather than serve the route without that user.
func ParseHtpasswd(data []byte) ([]route.BasicUser, error) {
	var users []route.BasicUser
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		u, err := parseUser(string(line), users)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil, errors.New("no user:hash line")
	}
	return users, nil
}

// parseUser parses one user:hash, whose user is not among before.
func parseUser(line string, before []route.BasicUser) (route.BasicUser, error) {
	user, hash, ok := strings.Cut(line, ":")
	if !ok || user == "" || hash == "" {
		return route.BasicUser{}, errors.New("want user:hash, as htpasswd -nB user prints it")
	}
	if len(user) > maxNameLen || strings.ContainsFunc(user, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return route.BasicUser{}, fmt.Errorf("user name: want at most %d printable characters", maxNameLen)
	}
	for _, b := range before {
		if b.Name == user {
			return route.BasicUser{}, fmt.Errorf("user %q listed twice", user)
		}
	}
	if _, err := hashKind(hash); err != nil {
		return route.BasicUser{}, fmt.Errorf("user %q: %w", user, err)
	}
	return route.BasicUser{Name: user, Hash: route.Secret(hash)}, nil
}

// hashKind says which kind of hash h is, or why the edge cannot check a
// password against it. The error never quotes h.
func hashKind(h string) (string, error) {
	switch {
	case strings.Contains(h, "$$"):
		return "", errors.New(`the hash has "$$": in a stack or compose file write each "$" of the hash as "$$" (docker stack deploy makes it "$"); anywhere else (docker service create --label, the API) write "$"`)
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		if _, err := bcrypt.Cost([]byte(h)); err != nil || len(h) != 60 {
			return "", errors.New("malformed bcrypt hash (want 60 characters, $2y$NN$ and 53 more)")
		}
		return hashBcrypt, nil
	case strings.HasPrefix(h, apr1Magic), strings.HasPrefix(h, md5Magic):
		magic := apr1Magic
		if strings.HasPrefix(h, md5Magic) {
			magic = md5Magic
		}
		salt, sum, ok := strings.Cut(h[len(magic):], "$")
		if !ok || len(salt) > 8 || len(sum) != 22 || !crypt64(salt) || !crypt64(sum) {
			return "", fmt.Errorf("malformed MD5 hash (want %sSALT$ and 22 characters)", magic)
		}
		return hashMD5, nil
	case strings.HasPrefix(h, shaPrefix):
		if sum, err := base64.StdEncoding.DecodeString(h[len(shaPrefix):]); err != nil || len(sum) != sha1.Size {
			return "", errors.New("malformed SHA-1 hash (want {SHA} and 28 characters of base64)")
		}
		return hashSHA1, nil
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "", errors.New("SHA-crypt hashes ($5$, $6$) are not supported (nor by Traefik); make the line with htpasswd -nB user")
	case strings.HasPrefix(h, "$"):
		return "", errors.New("unknown hash kind; want bcrypt ($2y$, htpasswd -nB user), MD5 ($apr1$) or SHA-1 ({SHA})")
	}
	return "", errors.New("a crypt(3) DES or plain-text password is refused: whoever reads the label or file has the password, or finds it in seconds; make the line with htpasswd -nB user")
}

// WeakHash says why the hash of u is weak ("MD5 (apr1)" and "SHA-1" hashes
// are cheap to brute-force, SHA-1 has no salt), or returns "" for bcrypt.
// They are served all the same, as Traefik serves them; check warns.
func WeakHash(u route.BasicUser) string {
	switch k, _ := hashKind(string(u.Hash)); k {
	case hashMD5:
		return "its hash is MD5 (apr1), which is fast to brute-force"
	case hashSHA1:
		return "its hash is unsalted SHA-1, which is fast to brute-force"
	}
	return ""
}

// verify reports whether pass is the password of hash, a hash that
// hashKind accepts. The comparison takes the same time wherever the
// computed hash and the stored one differ.
func verify(hash route.Secret, pass string) bool {
	h := string(hash)
	switch k, _ := hashKind(h); k {
	case hashBcrypt:
		return bcrypt.CompareHashAndPassword([]byte(h), []byte(pass)) == nil
	case hashMD5:
		magic := apr1Magic
		if strings.HasPrefix(h, md5Magic) {
			magic = md5Magic
		}
		salt, _, _ := strings.Cut(h[len(magic):], "$")
		return subtle.ConstantTimeCompare([]byte(md5Crypt(pass, salt, magic)), []byte(h)) == 1
	case hashSHA1:
		sum := sha1.Sum([]byte(pass))
		return subtle.ConstantTimeCompare([]byte(shaPrefix+base64.StdEncoding.EncodeToString(sum[:])), []byte(h)) == 1
	}
	return false
}

// cost ranks hashes by how long verify takes, so that a decoy for unknown
// users can be the slowest: bcrypt by its cost, then MD5, then SHA-1.
func cost(hash route.Secret) int {
	switch k, _ := hashKind(string(hash)); k {
	case hashBcrypt:
		c, _ := bcrypt.Cost([]byte(hash))
		return 2 + c
	case hashMD5:
		return 1
	}
	return 0
}

const (
	apr1Magic = "$apr1$" // Apache's htpasswd
	md5Magic  = "$1$"    // FreeBSD's md5crypt, the same algorithm
	shaPrefix = "{SHA}"
)

// itoa64 is the alphabet of crypt(3)'s base 64.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func crypt64(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(itoa64, s[i]) < 0 {
			return false
		}
	}
	return true
}

// md5Crypt is Poul-Henning Kamp's md5crypt (FreeBSD's $1$), which Apache
// adopted with the magic $apr1$: MD5 over password, magic and salt, with
// an alternate sum mixed in, stretched by 1000 rounds, then the 16 bytes
// written in crypt(3)'s base 64 in a fixed shuffled order. It returns
// magic, salt, "$" and the 22 characters.
func md5Crypt(pass, salt, magic string) string {
	pw := []byte(pass)
	alt := md5.Sum([]byte(pass + salt + pass))
	ctx := md5.New()
	ctx.Write([]byte(pass + magic + salt))
	for n := len(pw); n > 0; n -= 16 {
		ctx.Write(alt[:min(n, 16)])
	}
	for i := len(pw); i != 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)
	for i := range 1000 {
		ctx.Reset()
		if i&1 != 0 {
			ctx.Write(pw)
		} else {
			ctx.Write(final)
		}
		if i%3 != 0 {
			ctx.Write([]byte(salt))
		}
		if i%7 != 0 {
			ctx.Write(pw)
		}
		if i&1 != 0 {
			ctx.Write(final)
		} else {
			ctx.Write(pw)
		}
		final = ctx.Sum(final[:0])
	}
	out := make([]byte, 0, len(magic)+len(salt)+1+22)
	out = append(out, magic...)
	out = append(out, salt...)
	out = append(out, '$')
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	for _, t := range [][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		to64(uint32(final[t[0]])<<16|uint32(final[t[1]])<<8|uint32(final[t[2]]), 4)
	}
	to64(uint32(final[11]), 2)
	return string(out)
}
