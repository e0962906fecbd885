package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// StackService is one service of a compose/stack file: its deploy.labels,
// which are the service labels Swarm (and so the edge) sees.
type StackService struct {
	Name   string
	Labels map[string]string
	// Warnings are mistakes that are not errors, such as route labels under
	// the service-level "labels:" key: those label the containers, and Swarm
	// routing never sees them.
	Warnings []string
}

// stackFile is the part of the compose format that routing depends on.
// Everything else in the file is ignored.
type stackFile struct {
	Services map[string]*stackService `yaml:"services"`
}

type stackService struct {
	Labels yaml.Node `yaml:"labels"`
	Deploy struct {
		Labels yaml.Node `yaml:"labels"`
	} `yaml:"deploy"`
}

// ParseStack reads a compose/stack file and returns each service's
// deploy.labels (map form or list form `- "key=value"`), sorted by name.
// Non-string scalars (port: 8080, ip_hash: true) read as written, as
// `docker stack deploy` reads them, and so is "$$", which is "$" (how a
// password hash is written in a stack file). Variables (${VAR}) are not
// interpolated.
func ParseStack(data []byte) ([]StackService, error) {
	var f stackFile
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("discovery: stack file: %w", err)
	}
	out := make([]StackService, 0, len(f.Services))
	for name, s := range f.Services {
		ss := StackService{Name: name, Labels: map[string]string{}}
		if s != nil {
			var err error
			if ss.Labels, err = nodeLabels(&s.Deploy.Labels); err != nil {
				return nil, fmt.Errorf("discovery: stack file: service %q: deploy.labels: %w", name, err)
			}
			for k, v := range ss.Labels {
				ss.Labels[k] = strings.ReplaceAll(v, "$$", "$")
			}
			container, err := nodeLabels(&s.Labels)
			if err != nil {
				return nil, fmt.Errorf("discovery: stack file: service %q: labels: %w", name, err)
			}
			ss.Warnings = containerLabelWarnings(container)
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b StackService) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// containerLabelWarnings flags route labels put on the containers: the
// classic mistake, since they look right and do nothing.
func containerLabelWarnings(labels map[string]string) []string {
	var ws []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if strings.HasPrefix(k, labelPrefix) || strings.HasPrefix(k, interlockPrefix) {
			ws = append(ws, fmt.Sprintf("labels: %s is a container label, which Swarm routing ignores; move it under deploy.labels", k))
		}
	}
	return ws
}

// nodeLabels reads a compose label block: a mapping, or a list of
// "key=value" strings (a bare "key" has an empty value).
func nodeLabels(n *yaml.Node) (map[string]string, error) {
	out := map[string]string{}
	n = resolveAlias(n)
	switch n.Kind {
	case 0: // absent
		return out, nil
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return out, nil
		}
		return nil, fmt.Errorf("line %d: want a mapping or a list of key=value", n.Line)
	case yaml.MappingNode:
		return out, mappingLabels(n, out)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a \"key=value\" string", item.Line)
			}
			k, v, _ := strings.Cut(item.Value, "=")
			if k == "" {
				return nil, fmt.Errorf("line %d: label with no name", item.Line)
			}
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("line %d: label %s is set twice", item.Line, k)
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: want a mapping or a list of key=value", n.Line)
}

// mappingLabels reads a mapping of labels, following "<<" merge keys (which
// yaml.v3 leaves to the reader when decoding into a Node). Keys set here win
// over merged ones, as in YAML.
func mappingLabels(n *yaml.Node, out map[string]string) error {
	own := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Value == "<<" && k.Tag == "!!merge" {
			if v.Kind == yaml.SequenceNode {
				merges = append(merges, v.Content...)
			} else {
				merges = append(merges, v)
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: label %s: want a plain value", v.Line, k.Value)
		}
		val := v.Value
		if v.Tag == "!!null" {
			val = ""
		}
		out[k.Value] = val
		own[k.Value] = true
	}
	for _, m := range merges {
		m = resolveAlias(m)
		if m.Kind != yaml.MappingNode {
			return fmt.Errorf("line %d: merge needs a mapping", m.Line)
		}
		merged := map[string]string{}
		if err := mappingLabels(m, merged); err != nil {
			return err
		}
		for k, v := range merged {
			if _, set := out[k]; !set && !own[k] {
				out[k] = v
			}
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}
