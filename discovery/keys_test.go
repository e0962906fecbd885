package discovery

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docLabels reads the markdown tables of LABELS.md and returns the label
// names written in code spans: defined are those of a row's first cell (the
// rows that document a label), in order, mentioned those of any cell. Values
// after "=" are dropped (`swarmgate.tls=passthrough` is swarmgate.tls).
func docLabels(t *testing.T) (defined []string, mentioned map[string]bool) {
	t.Helper()
	doc, err := os.ReadFile("LABELS.md")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	mentioned = map[string]bool{}
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i, cell := range cells {
			for _, m := range code.FindAllStringSubmatch(cell, -1) {
				label, _, _ := strings.Cut(m[1], "=")
				mentioned[label] = true
				if i == 0 {
					defined = append(defined, label)
				}
			}
		}
	}
	return defined, mentioned
}

// docKey returns the route key of a swarmgate label: swarmgate.<key> and
// swarmgate.routes.<name>.<key> are the same key. ok is false for other
// labels.
func docKey(label string) (key string, ok bool) {
	if rest, named := strings.CutPrefix(label, namedPrefix); named {
		_, key, ok = strings.Cut(rest, ".")
		return key, ok
	}
	return strings.CutPrefix(label, labelPrefix)
}

// TestLabelsDocKeys keeps LABELS.md and the key tables in step: every route
// key and every Interlock key has a row, and the tables name no label that
// the parser does not know.
func TestLabelsDocKeys(t *testing.T) {
	defined, mentioned := docLabels(t)
	keys := routeKeys()
	var documented []string // keys in the order of their first row
	for _, label := range defined {
		key, ok := docKey(label)
		if k := lookupKey(keys, key); ok && k != nil {
			key = k.name // a suffix row: headers.request.<Name> is headers.request.
		}
		if ok && !slices.Contains(documented, key) {
			documented = append(documented, key)
		}
	}
	for _, k := range keys {
		if !slices.Contains(documented, k.name) {
			t.Errorf("LABELS.md has no table row for %s%s", labelPrefix, k.name)
		}
	}
	if names := keyOrder(keys); !slices.Equal(documented, names) && len(documented) == len(names) {
		t.Errorf("LABELS.md lists the keys in the order\n  %v\nwant the order of routeKeys\n  %v", documented, names)
	}
	ilKeys := interlockKeys()
	for _, k := range ilKeys {
		if !slices.Contains(defined, interlockPrefix+k.name) {
			t.Errorf("LABELS.md has no table row for %s%s", interlockPrefix, k.name)
		}
	}
	for _, label := range slices.Sorted(maps.Keys(mentioned)) {
		if key, ok := docKey(label); ok && lookupKey(keys, key) == nil {
			t.Errorf("LABELS.md documents %s, which is no key of routeKeys", label)
		}
		if name, ok := strings.CutPrefix(label, interlockPrefix); ok &&
			!slices.ContainsFunc(ilKeys, func(k interlockKey) bool { return k.name == name }) {
			t.Errorf("LABELS.md documents %s, which is no key of interlockKeys", label)
		}
	}
}

// keyOrder returns the key names in the order of the table.
func keyOrder(keys []keyDef) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// TestKeyTable checks the rows themselves: unique names, a doc line and a
// parser each, and an Interlock mapping onto keys that exist.
func TestKeyTable(t *testing.T) {
	keys := routeKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		switch {
		case seen[k.name]:
			t.Errorf("key %q: two rows", k.name)
		case k.name == "" || k.doc == "" || k.kind == 0 || k.suffix != (k.applyKey != nil) || !k.suffix && k.apply == nil:
			t.Errorf("key %q: want a name, a doc line, a kind and an apply func (applyKey for a suffix row)", k.name)
		case k.name == "routes" || strings.HasPrefix(k.name, "routes."):
			t.Errorf("key %q: collides with swarmgate.routes.<name>.<key>", k.name)
		}
		seen[k.name] = true
	}
	ilKeys := interlockKeys()
	if !slices.IsSortedFunc(ilKeys, func(a, b interlockKey) int { return strings.Compare(a.name, b.name) }) {
		t.Error("interlockKeys is not sorted")
	}
	for _, k := range ilKeys {
		if k.key != "" && lookupKey(keys, k.key) == nil {
			t.Errorf("Interlock key %q maps onto unknown key %q", k.name, k.key)
		}
	}
}
