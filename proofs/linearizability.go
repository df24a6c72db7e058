package proofs

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/latchnvr/latch/model"
)

// LinOp is the kind of a linearizability operation.
type LinOp uint8

const (
	// LinAttempt is a login attempt, both phases (Event says what
	// verification finds; a refusal never looks at it).
	LinAttempt LinOp = iota
	// LinUnlock opens every key of the principal (R-UNLOCK "all keys of a
	// principal", world.UnlockPrincipal); LinReset is the key side of R-RESET.
	LinUnlock
	LinReset
	// LinUnlockPair opens the pair and the source key (world.UnlockPair).
	LinUnlockPair
	// LinDisable and LinEnable are the administrative switch.
	LinDisable
	LinEnable
)

var linOpNames = [...]string{"attempt", "unlock", "reset", "unlock-pair", "disable", "enable"}

func (o LinOp) String() string {
	if int(o) < len(linOpNames) {
		return linOpNames[o]
	}
	return fmt.Sprintf("LinOp(%d)", o)
}

// LinInput is one operation's input as the service received it. Now is the
// instant the service decided with (read while it held the principal), so
// the model decides at the same instant.
type LinInput struct {
	Op        LinOp
	Principal model.Principal
	// Source is the canonical source text (model.Source.String()); empty
	// for a console attempt and for principal-wide operations.
	Source string
	Event  model.Event
	Now    model.Instant
}

// LinOutput is what the service answered: the parts of a decision a client
// observes. Operations other than attempts answer the zero LinOutput.
type LinOutput struct {
	Verdict    model.Verdict
	Scope      model.Scope
	RetryAfter time.Duration
	Remaining  int
}

// OutputOf is the observable part of a decision.
func OutputOf(d model.Decision) LinOutput {
	return LinOutput{Verdict: d.Verdict, Scope: d.Scope, RetryAfter: d.RetryAfter, Remaining: d.Remaining}
}

func (o LinOutput) String() string {
	s := o.Verdict.String()
	if o.Scope != model.ScopeNone {
		s += " (" + o.Scope.String() + ")"
	}
	if o.RetryAfter > 0 {
		s += " retry " + model.FormatDuration(o.RetryAfter)
	}
	if o.Verdict == model.Failed {
		s += fmt.Sprintf(" remaining %d", o.Remaining)
	}
	return s
}

// linState is the keys of one partition (the principals that share
// sources), as a canonical string so porcupine compares states with ==.
type linState = string

type linKeys struct {
	last       model.Instant
	pairs      map[[2]string]model.Pair
	sources    map[string]model.Key
	principals map[string]model.Key
	consoles   map[string]model.Key
}

func newLinKeys() *linKeys {
	return &linKeys{pairs: map[[2]string]model.Pair{}, sources: map[string]model.Key{},
		principals: map[string]model.Key{}, consoles: map[string]model.Key{}}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r *reader) string() string {
	n := int(r.uvarint())
	if n > len(r.b) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func sortedKeys[K comparable, V any](m map[K]V, less func(a, b K) bool) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return less(ks[i], ks[j]) })
	return ks
}

func (lk *linKeys) encode() linState {
	var b []byte
	b = binary.AppendVarint(b, int64(lk.last))
	pairs := sortedKeys(lk.pairs, func(a, b [2]string) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) })
	b = binary.AppendUvarint(b, uint64(len(pairs)))
	for _, id := range pairs {
		pr := lk.pairs[id]
		b = appendString(appendString(b, id[0]), id[1])
		b = appendPairExtra(appendKey(b, &pr.Key), &pr)
	}
	for _, m := range []map[string]model.Key{lk.sources, lk.principals, lk.consoles} {
		ids := sortedKeys(m, func(a, b string) bool { return a < b })
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			k := m[id]
			b = appendKey(appendString(b, id), &k)
		}
	}
	return string(b)
}

func decodeLinKeys(s linState) *linKeys {
	lk := newLinKeys()
	if s == "" {
		return lk
	}
	r := reader{b: []byte(s)}
	lk.last = model.Instant(r.varint())
	n := int(r.uvarint())
	for i := 0; i < n && !r.bad; i++ {
		id := [2]string{r.string(), r.string()}
		var pr model.Pair
		r.key(&pr.Key)
		r.pairExtra(&pr)
		lk.pairs[id] = pr
	}
	for _, m := range []map[string]model.Key{lk.sources, lk.principals, lk.consoles} {
		n := int(r.uvarint())
		for i := 0; i < n && !r.bad; i++ {
			id := r.string()
			var k model.Key
			r.key(&k)
			m[id] = k
		}
	}
	return lk
}

func putKey[K comparable, V comparable](m map[K]V, k K, v V) {
	var zero V
	if v == zero {
		delete(m, k)
		return
	}
	m[k] = v
}

// step applies one operation as world.World does and returns the decision.
func (lk *linKeys) step(in LinInput, p *model.Policy) model.Decision {
	pr := string(in.Principal)
	switch in.Op {
	case LinAttempt:
		src := in.Source
		if in.Event.Channel == model.Console {
			src = ""
		}
		v := model.View{Principal: lk.principals[pr], Console: lk.consoles[pr]}
		if src != "" {
			v.Pair = lk.pairs[[2]string{pr, src}]
			v.Source = lk.sources[src]
		}
		v2, d := model.Decide(v, in.Event, in.Now, p)
		if src != "" {
			putKey(lk.pairs, [2]string{pr, src}, v2.Pair)
			putKey(lk.sources, src, v2.Source)
		}
		putKey(lk.principals, pr, v2.Principal)
		putKey(lk.consoles, pr, v2.Console)
		return d
	case LinUnlock, LinReset:
		putKey(lk.principals, pr, model.Unlock(lk.principals[pr]))
		putKey(lk.consoles, pr, model.Unlock(lk.consoles[pr]))
		for id, pa := range lk.pairs {
			if id[0] == pr {
				putKey(lk.pairs, id, model.UnlockPair(pa))
			}
		}
	case LinUnlockPair:
		id := [2]string{pr, in.Source}
		putKey(lk.pairs, id, model.UnlockPair(lk.pairs[id]))
		putKey(lk.sources, in.Source, model.Unlock(lk.sources[in.Source]))
	case LinDisable, LinEnable:
		k := lk.principals[pr]
		k.Disabled = in.Op == LinDisable
		putKey(lk.principals, pr, k)
	}
	return model.Decision{}
}

// LinearizabilityModel is the porcupine model of the auth service: the
// sequential specification is model.Decide (and world's admin operations)
// under policy p. Each partition starts from no keys at all. Operations
// must carry the instant the service decided with (LinInput.Now): a
// linearization whose instants go backwards is not one the service could
// have produced, since it reads the instant while holding the principal.
//
// Partitions are the principals, except that principals whose attempts
// share a source are checked together when source keys count failures
// (a source key is shared by every principal, so such operations do not
// commute); with no source key in the policy every principal is its own
// partition.
func LinearizabilityModel(p model.Policy) porcupine.Model {
	coupled := !p.Disabled && (p.Source.Threshold > 0 || anyRoleThreshold(p.Source.RoleThreshold))
	part := func(ins []LinInput) [][]int {
		return linPartition(ins, coupled)
	}
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			ins := make([]LinInput, len(history))
			for i, op := range history {
				ins[i] = op.Input.(LinInput)
			}
			var out [][]porcupine.Operation
			for _, idx := range part(ins) {
				ops := make([]porcupine.Operation, len(idx))
				for j, i := range idx {
					ops[j] = history[i]
				}
				out = append(out, ops)
			}
			return out
		},
		PartitionEvent: func(history []porcupine.Event) [][]porcupine.Event {
			var ins []LinInput
			var ids []int
			pos := map[int]int{}
			for _, ev := range history {
				if ev.Kind == porcupine.CallEvent {
					pos[ev.Id] = len(ins)
					ins = append(ins, ev.Value.(LinInput))
					ids = append(ids, ev.Id)
				}
			}
			group := map[int]int{}
			for g, idx := range part(ins) {
				for _, i := range idx {
					group[ids[i]] = g
				}
			}
			out := make([][]porcupine.Event, len(part(ins)))
			for _, ev := range history {
				g := group[ev.Id]
				out[g] = append(out[g], ev)
			}
			return out
		},
		Init: func() interface{} { return linState("") },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			in := input.(LinInput)
			lk := decodeLinKeys(state.(linState))
			if in.Now < lk.last {
				return false, state
			}
			lk.last = in.Now
			d := lk.step(in, &p)
			want := LinOutput{}
			if in.Op == LinAttempt {
				want = OutputOf(d)
			}
			if output.(LinOutput) != want {
				return false, state
			}
			return true, lk.encode()
		},
		Equal: func(a, b interface{}) bool { return a.(linState) == b.(linState) },
		Hash: func(s interface{}) uint64 {
			h := hashBytes([]byte(s.(linState)))
			return h[0]
		},
		DescribeOperation: func(input, output interface{}) string {
			in := input.(LinInput)
			at := model.FormatDuration(time.Duration(in.Now))
			if in.Op != LinAttempt {
				s := fmt.Sprintf("%s %s", in.Op, in.Principal)
				if in.Source != "" {
					s += "@" + in.Source
				}
				return s + " at " + at
			}
			where := in.Source
			if in.Event.Channel == model.Console {
				where = "console"
			}
			return fmt.Sprintf("%s@%s %s at %s → %s", in.Principal, where, outcomeName(in.Event.Outcome), at, output.(LinOutput))
		},
		DescribeState: func(s interface{}) string {
			lk := decodeLinKeys(s.(linState))
			var parts []string
			for _, pr := range sortedKeys(lk.principals, func(a, b string) bool { return a < b }) {
				k := lk.principals[pr]
				parts = append(parts, fmt.Sprintf("%s:%s/%d", pr, k.Mode, k.NFail))
			}
			for _, id := range sortedKeys(lk.pairs, func(a, b [2]string) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }) {
				k := lk.pairs[id]
				parts = append(parts, fmt.Sprintf("%s@%s:%s/%d", id[0], id[1], k.Mode, k.NFail))
			}
			return "{" + strings.Join(parts, " ") + "}"
		},
	}
}

// linPartition groups operations by principal, joining principals whose
// operations touch a common source key when coupled. Groups are returned
// in order of their first operation, each in history order.
func linPartition(ins []LinInput, coupled bool) [][]int {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] == "" || parent[x] == x {
			parent[x] = x
			return x
		}
		r := find(parent[x])
		parent[x] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra != rb {
			if ra < rb {
				parent[rb] = ra
			} else {
				parent[ra] = rb
			}
		}
	}
	for _, in := range ins {
		pr := "p:" + string(in.Principal)
		find(pr)
		if coupled && in.Source != "" && (in.Op == LinAttempt && in.Event.Channel == model.Remote || in.Op == LinUnlockPair) {
			union(pr, "s:"+in.Source)
		}
	}
	index := map[string]int{}
	var groups [][]int
	for i, in := range ins {
		root := find("p:" + string(in.Principal))
		g, ok := index[root]
		if !ok {
			g = len(groups)
			index[root] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}
