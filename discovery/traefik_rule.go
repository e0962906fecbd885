package discovery

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Traefik router rules (traefik.http.routers.<r>.rule and
// traefik.tcp.routers.<r>.rule): a tokenizer and a recursive descent parser
// that yield a boolean expression of matchers, and its conversion into what
// swarmgate routes, a disjunction of (hosts, path) alternatives. Both are
// pure functions of the rule text.
//
// The grammar, Traefik v2's and v3's (v2's several arguments per matcher
// included):
//
//	expr    = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" expr ")" | matcher
//	matcher = NAME "(" [ string { "," string } ] ")"
//	string  = "`" { any byte but "`" } "`" | a Go double-quoted string

// Bounds on rules. A rule is written by hand; these stop a pathological
// label from costing the parser more than a moment.
const (
	maxRuleLen   = 4096
	maxRuleDepth = 32 // nested parentheses and negations
	maxRuleAlts  = 64 // alternatives after distributing && over ||
)

type ruleTokKind uint8

const (
	tokEOF ruleTokKind = iota
	tokName
	tokString
	tokLParen
	tokRParen
	tokComma
	tokAnd
	tokOr
	tokNot
)

var tokNames = [...]string{tokEOF: "end of rule", tokName: "matcher name", tokString: "string",
	tokLParen: `"("`, tokRParen: `")"`, tokComma: `","`, tokAnd: `"&&"`, tokOr: `"||"`, tokNot: `"!"`}

type ruleTok struct {
	kind ruleTokKind
	text string // a name, or a string's value
	pos  int    // byte offset in the rule
}

// ruleError is a rule syntax error at a byte offset.
func ruleError(pos int, format string, args ...any) error {
	return fmt.Errorf("rule: at column %d: %s", pos+1, fmt.Sprintf(format, args...))
}

// tokenizeRule splits a rule into tokens, ending with tokEOF.
func tokenizeRule(rule string) ([]ruleTok, error) {
	if len(rule) > maxRuleLen {
		return nil, fmt.Errorf("rule: longer than %d bytes", maxRuleLen)
	}
	var toks []ruleTok
	for i := 0; i < len(rule); {
		c := rule[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, ruleTok{tokLParen, "", i})
			i++
		case c == ')':
			toks = append(toks, ruleTok{tokRParen, "", i})
			i++
		case c == ',':
			toks = append(toks, ruleTok{tokComma, "", i})
			i++
		case c == '!':
			toks = append(toks, ruleTok{tokNot, "", i})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(rule) || rule[i+1] != c {
				return nil, ruleError(i, "want %c%c", c, c)
			}
			k := tokAnd
			if c == '|' {
				k = tokOr
			}
			toks = append(toks, ruleTok{k, "", i})
			i += 2
		case c == '`':
			end := strings.IndexByte(rule[i+1:], '`')
			if end < 0 {
				return nil, ruleError(i, "unterminated string")
			}
			toks = append(toks, ruleTok{tokString, rule[i+1 : i+1+end], i})
			i += end + 2
		case c == '"':
			j := i + 1
			for j < len(rule) && rule[j] != '"' {
				if rule[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(rule) {
				return nil, ruleError(i, "unterminated string")
			}
			v, err := strconv.Unquote(rule[i : j+1])
			if err != nil {
				return nil, ruleError(i, "bad string %s", rule[i:j+1])
			}
			toks = append(toks, ruleTok{tokString, v, i})
			i = j + 1
		case isRuleNameByte(c):
			j := i
			for j < len(rule) && isRuleNameByte(rule[j]) {
				j++
			}
			toks = append(toks, ruleTok{tokName, rule[i:j], i})
			i = j
		default:
			return nil, ruleError(i, "unexpected %q", rule[i:i+1])
		}
	}
	return append(toks, ruleTok{tokEOF, "", len(rule)}), nil
}

func isRuleNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

type ruleOp uint8

const (
	opMatch ruleOp = iota
	opAnd
	opOr
	opNot
)

// ruleExpr is a node of a parsed rule.
type ruleExpr struct {
	op   ruleOp
	name string   // the matcher, for opMatch
	args []string // its arguments
	pos  int
	x, y *ruleExpr // operands; y is nil for opNot
}

// String writes a matcher as Traefik's docs do, for error messages.
func (e *ruleExpr) String() string {
	args := make([]string, len(e.args))
	for i, a := range e.args {
		args[i] = "`" + a + "`"
	}
	return e.name + "(" + strings.Join(args, ", ") + ")"
}

// Matchers, by router kind. The names are Traefik's, case and all.
var (
	httpMatchers = []string{"ClientIP", "Header", "HeaderRegexp", "Headers", "HeadersRegexp", "Host", "HostHeader",
		"HostRegexp", "Method", "Path", "PathPrefix", "PathRegexp", "Query", "QueryRegexp"}
	tcpMatchers = []string{"ALPN", "ClientIP", "HostSNI", "HostSNIRegexp"}
)

type ruleParser struct {
	toks     []ruleTok
	i        int
	depth    int
	matchers []string
}

// parseRule parses a rule whose matchers are among matchers (httpMatchers
// or tcpMatchers).
func parseRule(rule string, matchers []string) (*ruleExpr, error) {
	toks, err := tokenizeRule(rule)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tokEOF {
		return nil, errors.New("rule: empty")
	}
	p := &ruleParser{toks: toks, matchers: matchers}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, ruleError(t.pos, "unexpected %s; want && or || between matchers", tokNames[t.kind])
	}
	return e, nil
}

func (p *ruleParser) peek() ruleTok { return p.toks[p.i] }
func (p *ruleParser) next() ruleTok { t := p.toks[p.i]; p.i++; return t }

func (p *ruleParser) or() (*ruleExpr, error) {
	x, err := p.and()
	for err == nil && p.peek().kind == tokOr {
		t := p.next()
		var y *ruleExpr
		if y, err = p.and(); err == nil {
			x = &ruleExpr{op: opOr, pos: t.pos, x: x, y: y}
		}
	}
	return x, err
}

func (p *ruleParser) and() (*ruleExpr, error) {
	x, err := p.unary()
	for err == nil && p.peek().kind == tokAnd {
		t := p.next()
		var y *ruleExpr
		if y, err = p.unary(); err == nil {
			x = &ruleExpr{op: opAnd, pos: t.pos, x: x, y: y}
		}
	}
	return x, err
}

func (p *ruleParser) unary() (*ruleExpr, error) {
	t := p.next()
	switch t.kind {
	case tokNot, tokLParen:
		if p.depth++; p.depth > maxRuleDepth {
			return nil, ruleError(t.pos, "nested deeper than %d", maxRuleDepth)
		}
		defer func() { p.depth-- }()
		if t.kind == tokNot {
			x, err := p.unary()
			if err != nil {
				return nil, err
			}
			return &ruleExpr{op: opNot, pos: t.pos, x: x}, nil
		}
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, ruleError(c.pos, "want \")\" to close the \"(\" at column %d, got %s", t.pos+1, tokNames[c.kind])
		}
		return x, nil
	case tokName:
		return p.matcher(t)
	}
	return nil, ruleError(t.pos, "want a matcher, \"(\" or \"!\", got %s", tokNames[t.kind])
}

func (p *ruleParser) matcher(name ruleTok) (*ruleExpr, error) {
	if !slices.Contains(p.matchers, name.text) {
		return nil, ruleError(name.pos, "unknown matcher %q%s", name.text, suggestMatcher(name.text, p.matchers))
	}
	if t := p.next(); t.kind != tokLParen {
		return nil, ruleError(t.pos, "want \"(\" after %s", name.text)
	}
	e := &ruleExpr{op: opMatch, name: name.text, pos: name.pos}
	if p.peek().kind == tokRParen {
		return nil, ruleError(p.peek().pos, "%s takes at least one string", name.text)
	}
	for {
		t := p.next()
		if t.kind != tokString {
			return nil, ruleError(t.pos, "want a string (`...` or \"...\") as argument of %s, got %s", name.text, tokNames[t.kind])
		}
		e.args = append(e.args, t.text)
		switch t := p.next(); t.kind {
		case tokComma:
		case tokRParen:
			return e, nil
		default:
			return nil, ruleError(t.pos, "want \",\" or \")\" in %s, got %s", name.text, tokNames[t.kind])
		}
	}
}

// suggestMatcher names a matcher that differs from got in case only, or
// is within two edits.
func suggestMatcher(got string, matchers []string) string {
	for _, m := range matchers {
		if strings.EqualFold(m, got) {
			return fmt.Sprintf(" (did you mean %s?)", m)
		}
	}
	best, bestD := "", 3
	for _, m := range matchers {
		if d := editDistance(got, m); d < bestD {
			best, bestD = m, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// ruleAlt is one alternative of a rule: the requests for one of hosts (any
// host when nil) whose path is path (any path when ""), exactly or, for
// PathPrefix, as a prefix.
type ruleAlt struct {
	hosts []string // lower case, sorted, no duplicates
	path  string
	exact bool
}

// ruleAlts converts a parsed rule into its alternatives: the rule matches a
// request when one of them does. tcp says the rule is a TCP router's
// (HostSNI). Whatever swarmgate cannot route (negations, methods, headers,
// queries, client addresses, regular expressions) is an error that names
// the matcher and why.
func ruleAlts(e *ruleExpr, tcp bool) ([]ruleAlt, error) {
	alts, err := alternatives(e, tcp)
	if err != nil {
		return nil, err
	}
	if len(alts) == 0 {
		return nil, errors.New("rule: matches no request (its && parts exclude each other)")
	}
	return alts, nil
}

func alternatives(e *ruleExpr, tcp bool) ([]ruleAlt, error) {
	switch e.op {
	case opNot:
		return nil, fmt.Errorf("rule: at column %d: \"!\" is not representable: swarmgate routes select requests by host and path, they exclude none", e.pos+1)
	case opOr:
		x, err := alternatives(e.x, tcp)
		if err != nil {
			return nil, err
		}
		y, err := alternatives(e.y, tcp)
		if err != nil {
			return nil, err
		}
		return capAlts(dedupAlts(append(x, y...)))
	case opAnd:
		x, err := alternatives(e.x, tcp)
		if err != nil {
			return nil, err
		}
		y, err := alternatives(e.y, tcp)
		if err != nil {
			return nil, err
		}
		var out []ruleAlt
		for _, a := range x {
			for _, b := range y {
				if c, ok := andAlt(a, b); ok {
					out = append(out, c)
				}
			}
			if len(out) > maxRuleAlts {
				return nil, fmt.Errorf("rule: more than %d alternatives (hosts x paths); split it into several routers", maxRuleAlts)
			}
		}
		return dedupAlts(out), nil
	}
	return matcherAlts(e, tcp)
}

// matcherAlts is the alternatives of one matcher.
func matcherAlts(e *ruleExpr, tcp bool) ([]ruleAlt, error) {
	switch e.name {
	case "Host", "HostHeader":
		hosts := make([]string, len(e.args))
		for i, h := range e.args {
			if strings.Contains(h, "*") {
				return nil, fmt.Errorf("rule: %s: Host matches names exactly (Traefik's wildcards are HostRegexp); for *.example.org use swarmgate.routes.<router>.hosts", e)
			}
			hosts[i] = strings.ToLower(strings.TrimSpace(h))
		}
		return []ruleAlt{{hosts: sortedUnique(hosts)}}, nil
	case "HostSNI":
		if slices.Contains(e.args, "*") {
			if len(e.args) > 1 {
				return nil, fmt.Errorf("rule: %s: `*` (every connection) with names", e)
			}
			return []ruleAlt{{}}, nil
		}
		hosts := make([]string, len(e.args))
		for i, h := range e.args {
			hosts[i] = strings.ToLower(strings.TrimSpace(h))
		}
		return []ruleAlt{{hosts: sortedUnique(hosts)}}, nil
	case "Path", "PathPrefix":
		alts := make([]ruleAlt, len(e.args))
		for i, p := range e.args {
			if strings.Contains(p, "{") {
				return nil, fmt.Errorf("rule: at column %d: %s: a {name} or {name:regexp} in a path is a regular expression in Traefik v2 (PathRegexp in v3), and swarmgate routes literal paths (the nearest literal route is PathPrefix(`%s`))", e.pos+1, e, literalPrefix(p))
			}
			alts[i] = ruleAlt{path: p, exact: e.name == "Path"}
		}
		return capAlts(dedupAlts(alts))
	}
	what := "by host and path (Host, Path, PathPrefix)"
	if tcp {
		what = "TCP by SNI (or by port, for HostSNI(`*`))"
	}
	return nil, fmt.Errorf("rule: at column %d: %s is not representable: swarmgate routes %s", e.pos+1, e, what)
}

// literalPrefix is the part of a v2 path template before its first
// variable, up to its last "/": /users/{id}/posts -> /users.
func literalPrefix(p string) string {
	p, _, _ = strings.Cut(p, "{")
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// andAlt is the alternative that matches what both a and b match; false
// when no request matches both. Paths are compared as Traefik does, as
// strings: PathPrefix(`/a`) && PathPrefix(`/ab`) is PathPrefix(`/ab`).
func andAlt(a, b ruleAlt) (ruleAlt, bool) {
	c := a
	switch {
	case a.hosts == nil:
		c.hosts = b.hosts
	case b.hosts != nil:
		c.hosts = nil
		for _, h := range a.hosts {
			if slices.Contains(b.hosts, h) {
				c.hosts = append(c.hosts, h)
			}
		}
		if c.hosts == nil {
			return ruleAlt{}, false
		}
	}
	switch {
	case a.path == "":
		c.path, c.exact = b.path, b.exact
	case b.path == "":
	case a.exact && b.exact:
		if a.path != b.path {
			return ruleAlt{}, false
		}
	case a.exact:
		if !strings.HasPrefix(a.path, b.path) {
			return ruleAlt{}, false
		}
	case b.exact:
		if !strings.HasPrefix(b.path, a.path) {
			return ruleAlt{}, false
		}
		c.path, c.exact = b.path, true
	case strings.HasPrefix(b.path, a.path):
		c.path = b.path
	case !strings.HasPrefix(a.path, b.path):
		return ruleAlt{}, false
	}
	return c, true
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func dedupAlts(alts []ruleAlt) []ruleAlt {
	var out []ruleAlt
	for _, a := range alts {
		if !slices.ContainsFunc(out, func(b ruleAlt) bool {
			return a.path == b.path && a.exact == b.exact && slices.Equal(a.hosts, b.hosts) && (a.hosts == nil) == (b.hosts == nil)
		}) {
			out = append(out, a)
		}
	}
	return out
}

func capAlts(alts []ruleAlt) ([]ruleAlt, error) {
	if len(alts) > maxRuleAlts {
		return nil, fmt.Errorf("rule: more than %d alternatives (hosts x paths); split it into several routers", maxRuleAlts)
	}
	return alts, nil
}
