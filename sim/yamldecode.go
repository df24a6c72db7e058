package sim

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ScenarioError is a problem at a place in a scenario file. Line and Column
// are 1-based; Column is 0 only for YAML syntax errors, for which the YAML
// library reports a line alone.
type ScenarioError struct {
	File         string
	Line, Column int
	Field        string // the path of the field, e.g. "attacks[1].every"
	Reason       string
}

func (e *ScenarioError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ScenarioErrors is every problem found in a scenario file, in file order.
type ScenarioErrors []*ScenarioError

func (es ScenarioErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes each error.
func (es ScenarioErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

type pos struct{ line, col int }

// origin remembers where a decoded section came from, so that validation,
// which runs after merging `extends`, still points into the right file.
type origin struct {
	file  string
	path  string
	at    pos
	where map[string]pos
	errs  *ScenarioErrors
}

// errf reports a problem with one field of the section (or the section
// itself when field is "").
func (o *origin) errf(field, format string, args ...any) {
	path := o.path
	if field != "" {
		if path != "" && !strings.HasPrefix(field, "[") {
			path += "."
		}
		path += field
	}
	p, ok := o.where[path]
	if !ok {
		p = o.at
	}
	*o.errs = append(*o.errs, &ScenarioError{File: o.file, Line: p.line, Column: p.col, Field: path, Reason: fmt.Sprintf(format, args...)})
}

// set reports whether the file gave the field, so that defaults fill only
// absent fields and an explicit zero is validated like any value.
func (o *origin) set(field string) bool {
	if o.where == nil {
		return false
	}
	path := field
	if o.path != "" {
		path = o.path + "." + field
	}
	_, ok := o.where[path]
	return ok
}

// scalar is a type that parses itself from one YAML scalar.
type scalar interface {
	parseScalar(string) error
}

var (
	scalarType   = reflect.TypeFor[scalar]()
	originType   = reflect.TypeFor[origin]()
	durationType = reflect.TypeFor[Duration]()
)

// decoder fills Go values from YAML nodes, recording the position of every
// field and reporting every error with its line and column.
type decoder struct {
	file    string
	where   map[string]pos
	errs    *ScenarioErrors
	present map[string]bool // top-level keys the document sets
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	*d.errs = append(*d.errs, &ScenarioError{File: d.file, Line: n.Line, Column: n.Column, Field: path, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.where[path] = pos{n.Line, n.Column}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Addr().Type().Implements(scalarType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value")
			return
		}
		if err := v.Addr().Interface().(scalar).parseScalar(n.Value); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		items := n.Content
		if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
			items = []*yaml.Node{n} // a single name for a list of names
		} else if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			d.decode(it, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value")
			return
		}
		if err := setScalar(v, n.Value); err != nil {
			d.fail(n, path, "%v", err)
		}
	}
}

func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			return fmt.Errorf("want true or false, got %q", s)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			return fmt.Errorf("want a non-negative integer, got %q", s)
		}
		v.SetUint(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of fields")
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == originType {
			v.Field(i).Set(reflect.ValueOf(origin{file: d.file, path: path, at: pos{n.Line, n.Column}, where: d.where, errs: d.errs}))
			continue
		}
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := k.Value
		if path != "" {
			fp = path + "." + k.Value
		}
		if seen[k.Value] {
			d.fail(k, fp, "duplicate field")
			continue
		}
		seen[k.Value] = true
		fi, ok := fields[k.Value]
		if !ok {
			d.fail(k, fp, "unknown field (want one of %s)", strings.Join(names, ", "))
			continue
		}
		if path == "" && d.present != nil {
			d.present[k.Value] = true
		}
		d.decode(val, v.Field(fi), fp)
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML decodes a whole document into out, reporting syntax errors
// with their line and everything else with line and column.
func parseYAML(file string, data []byte, out any, present map[string]bool) ScenarioErrors {
	var errs ScenarioErrors
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimSpace(err.Error())
		e := &ScenarioError{File: file, Reason: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Reason = "YAML syntax: " + m[2]
		}
		return ScenarioErrors{e}
	}
	if len(doc.Content) == 0 {
		return ScenarioErrors{{File: file, Line: 1, Column: 1, Reason: "empty scenario"}}
	}
	d := &decoder{file: file, where: map[string]pos{}, errs: &errs, present: present}
	root := doc.Content[0]
	d.decode(root, reflect.ValueOf(out).Elem(), "")
	return errs
}
