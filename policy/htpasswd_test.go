package policy

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarmgate/swarmgate/route"
)

// Known vectors: each line made by Apache's htpasswd 2.4 (apache2-utils) or
// openssl passwd, with the password beside it. test and test2 are the users
// of Traefik's basicauth documentation.
var vectors = []struct {
	line, pass, kind string
}{
	{"alice:$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW", "s3cret", hashBcrypt},                    // htpasswd -nbB
	{"frank:$2y$05$ztHLF5PlsTxb.bg3ukwmN.RzYk8o8Vxe8AHR5OIHMhAzk3q9cADWi", "x", hashBcrypt},                         // htpasswd -nbB
	{"bob:$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB.", "hunter2", hashMD5},                                               // htpasswd -nb
	{"eve:$apr1$1Y2aouBI$19WdkFxdQ96EhNREyixOI1", "", hashMD5},                                                      // htpasswd -nbm, empty password
	{"test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "test", hashMD5},                                                 // Traefik's docs
	{"test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0", "test2", hashMD5},                                               // Traefik's docs
	{"u8:$apr1$12345678$Cj.o1Atxb8EjyF2F1NAV9/", "pass with spaces and ünïcode", hashMD5},                           // openssl passwd -apr1
	{"long:$apr1$abc$f6zZmgv3NMD.OtAEfoM1r0", "a-very-long-password-longer-than-sixteen-bytes-0123456789", hashMD5}, // openssl, short salt
	{"empty:$apr1$x$tMwYqBfQwi3FYAr0aJc8M/", "", hashMD5},                                                           // openssl, 1-byte salt
	{"bsd:$1$abcdefgh$vhxKZ/s1ygZHyCEDPyqtQ/", "hunter2", hashMD5},                                                  // openssl passwd -1
	{"carol:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "correct horse", hashSHA1},                                          // htpasswd -nbs
	{"sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test", hashSHA1},                                                     // openssl dgst -sha1 | base64
}

func TestVerifyKnownVectors(t *testing.T) {
	for _, v := range vectors {
		users, err := ParseUsers(v.line)
		if err != nil {
			t.Fatalf("%s: %v", v.line, err)
		}
		h := users[0].Hash
		if k, _ := hashKind(string(h)); k != v.kind {
			t.Errorf("%s: kind %q, want %q", v.line, k, v.kind)
		}
		if !verify(h, v.pass) {
			t.Errorf("%s: the password %q does not verify", v.line, v.pass)
		}
		for _, wrong := range []string{v.pass + "x", strings.ToUpper(v.pass) + "X", "", "test"} {
			if wrong != v.pass && verify(h, wrong) {
				t.Errorf("%s: the wrong password %q verifies", v.line, wrong)
			}
		}
	}
	// x/crypto's own bcrypt ($2a$) and the $2b$ spelling.
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{string(h), "$2b$" + string(h[4:])} {
		if !verify(route.Secret(hash), "pw") || verify(route.Secret(hash), "pW") {
			t.Errorf("bcrypt %s: verify is wrong", hash[:4])
		}
	}
}

// md5Crypt against the vectors, character for character.
func TestMD5Crypt(t *testing.T) {
	for _, v := range vectors {
		if v.kind != hashMD5 {
			continue
		}
		_, hash, _ := strings.Cut(v.line, ":")
		magic := apr1Magic
		if strings.HasPrefix(hash, md5Magic) {
			magic = md5Magic
		}
		salt, _, _ := strings.Cut(hash[len(magic):], "$")
		if got := md5Crypt(v.pass, salt, magic); got != hash {
			t.Errorf("md5Crypt(%q, %q, %q) = %s, want %s", v.pass, salt, magic, got, hash)
		}
	}
}

func TestParseUsers(t *testing.T) {
	bc := "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"
	apr := "$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB."
	sha := "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="
	cases := []struct {
		name, in string
		users    []string
		err      string
	}{
		{name: "one bcrypt", in: "alice:" + bc, users: []string{"alice"}},
		{name: "each kind, spaces around", in: "alice:" + bc + " , bob:" + apr + ",carol:" + sha, users: []string{"alice", "bob", "carol"}},
		{name: "md5crypt $1$", in: "dave:$1$abcdefgh$vhxKZ/s1ygZHyCEDPyqtQ/", users: []string{"dave"}},
		{name: "user with a space", in: "Alice Smith:" + bc, users: []string{"Alice Smith"}},
		{name: "empty", in: "", err: "entry 1 is empty"},
		{name: "trailing comma", in: "alice:" + bc + ",", err: "entry 2 is empty"},
		{name: "no colon", in: "alice", err: "entry 1: want user:hash"},
		{name: "no user", in: ":" + bc, err: "want user:hash"},
		{name: "no hash", in: "alice:", err: "want user:hash"},
		{name: "duplicate user", in: "alice:" + bc + ",alice:" + apr, err: `entry 2: user "alice" listed twice`},
		{name: "plain text", in: "alice:hunter2", err: `user "alice": a crypt(3) DES or plain-text password is refused`},
		{name: "crypt DES", in: "dave:prwzTCgM.Y.4o", err: `user "dave": a crypt(3) DES`},
		{name: "SHA-crypt", in: "erin:$6$salt$abcdef", err: "SHA-crypt"},
		{name: "unknown $", in: "erin:$y$j9T$abc", err: "unknown hash kind"},
		{name: "short bcrypt", in: "erin:$2y$05$short", err: "malformed bcrypt"},
		{name: "bad bcrypt cost", in: "erin:$2y$99$" + bc[7:], err: "malformed bcrypt"},
		{name: "short apr1", in: "erin:$apr1$salt$abc", err: "malformed MD5"},
		{name: "long apr1 salt", in: "erin:$apr1$123456789$96kE.ynCexCvJFV/sKnFB.", err: "malformed MD5"},
		{name: "bad SHA", in: "erin:{SHA}abc", err: "malformed SHA-1"},
		{name: "stack-file escaping left in", in: "test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/", err: `user "test": the hash has "$$"`},
		{name: "control character", in: "al\x01ice:" + bc, err: "printable"},
	}
	for _, c := range cases {
		got, err := ParseUsers(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "":
			var names []string
			for _, u := range got {
				names = append(names, u.Name)
			}
			if strings.Join(names, ",") != strings.Join(c.users, ",") {
				t.Errorf("%s: users %v, want %v", c.name, names, c.users)
			}
		}
		if err != nil {
			assertNoHash(t, c.name, err.Error(), c.in)
		}
	}
}

// assertNoHash fails when out holds a hash (or a plain-text password) of
// in, a user:hash list.
func assertNoHash(t *testing.T, what, out, in string) {
	t.Helper()
	for item := range strings.SplitSeq(in, ",") {
		_, hash, _ := strings.Cut(strings.TrimSpace(item), ":")
		if len(hash) >= 6 && strings.Contains(out, hash[len(hash)-6:]) {
			t.Errorf("%s: %q shows the hash", what, out)
		}
	}
}

func TestParseHtpasswd(t *testing.T) {
	bc := "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"
	cases := []struct {
		in    string
		users []string
		err   string
	}{
		{in: "# admins\nalice:" + bc + "\n\nbob:$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB.\r\ncarol:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n", users: []string{"alice", "bob", "carol"}},
		{in: "alice:" + bc + "\nbob:secret", err: `line 2: user "bob": a crypt(3) DES or plain-text password`},
		{in: "carol:$6$salt$hash", err: "line 1: user \"carol\": SHA-crypt"},
		{in: "erin:$2y$05$short", err: "malformed bcrypt"},
		{in: "alice:" + bc + "\nalice:" + bc, err: "line 2: user \"alice\" listed twice"},
		{in: "nocolon", err: "line 1: want user:hash"},
		{in: "# nothing\n", err: "no user:hash"},
	}
	for _, c := range cases {
		got, err := ParseHtpasswd([]byte(c.in))
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err == "":
			var names []string
			for _, u := range got {
				names = append(names, u.Name)
			}
			if strings.Join(names, ",") != strings.Join(c.users, ",") {
				t.Errorf("%q: users %v, want %v", c.in, names, c.users)
			}
		}
	}
}

func TestWeakHash(t *testing.T) {
	for _, v := range vectors {
		users, _ := ParseUsers(v.line)
		weak := WeakHash(users[0])
		if (weak == "") != (v.kind == hashBcrypt) {
			t.Errorf("%s: WeakHash %q", v.line, weak)
		}
		assertNoHash(t, "WeakHash", weak, v.line)
	}
}

// Inline users (swarmgate.auth.users) of each hash kind are served as a
// file's are: 401 with the challenge without or with wrong credentials, the
// upstream reached with right ones, and the file's line winning for a user
// in both.
func TestBasicAuthInlineUsers(t *testing.T) {
	users, err := ParseUsers("alice:$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW," +
		"bob:$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB.,carol:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeHtpasswd(t, bcryptLine(t, "carol", "from the file"), bcryptLine(t, "dave", "d4ve"))
	var up upstream
	srv := serve(t, &route.Policy{BasicUsers: users, BasicAuth: "users"}, Options{SecretsDir: dir}, up.handler(nil), "")
	for _, c := range []struct {
		user, pass string
		set        bool
		want       int
	}{
		{"", "", false, 401},
		{"alice", "s3cret", true, 200},
		{"alice", "S3cret", true, 401},
		{"bob", "hunter2", true, 200},
		{"bob", "hunter3", true, 401},
		{"carol", "correct horse", true, 401}, // the file's carol wins
		{"carol", "from the file", true, 200},
		{"dave", "d4ve", true, 200},
		{"mallory", "hunter2", true, 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if c.set {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, _ := do(t, req)
		if resp.StatusCode != c.want {
			t.Errorf("%s:%s: status %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
		if c.want == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="web", charset="UTF-8"` {
			t.Errorf("%s:%s: WWW-Authenticate %q", c.user, c.pass, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if n := up.hits.Load(); n != 4 {
		t.Errorf("upstream saw %d requests, want the 4 with right credentials", n)
	}

	bad := []route.BasicUser{{Name: "eve", Hash: "pl4inpw"}}
	if _, err := Build("web", &route.Policy{BasicUsers: bad}, http.NotFoundHandler(), Options{}); err == nil ||
		!strings.Contains(err.Error(), `auth.users: user "eve"`) || strings.Contains(err.Error(), "pl4inpw") {
		t.Errorf("an inline user that cannot be checked: %v", err)
	}
}
