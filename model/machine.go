package model

import (
	"context"
	"fmt"
	"reflect"

	"github.com/qmuntal/stateless"
)

// trigger is an input to one key's lock machine.
type trigger uint8

const (
	trigExpire  trigger = iota // time passed (R-ADVANCE)
	trigFail                   // a counted failure (R-FAIL, R-LOCK)
	trigRepeat                 // a replayed wrong secret, recorded not counted (R-REPLAY)
	trigRefuse                 // an attempt refused before verification (R-EXTEND)
	trigSucceed                // a verified right secret (R-SUCCESS)
	trigUnlock                 // unlock, reset or factory reset (R-UNLOCK, R-RESET, R-FACTORY)
	numTriggers
)

var triggerNames = [...]string{"Expire", "Fail", "Repeat", "Refuse", "Succeed", "Unlock"}

func (t trigger) String() string { return triggerNames[t] }

// facts are the guard inputs of one firing, computed from the key's
// extended state and the policy before the machine is consulted. Guards are
// pure functions of facts, so the table is finite and can be compiled.
type facts uint8

const (
	factReaches   facts = 1 << iota // this counted failure makes N within W
	factHoldDue                     // the lock it makes would be a hold
	factElapsed                     // until ≤ now
	factExtends                     // a refusal on this key extends it
	factCleared                     // a success clears this key
	numFactCombos = 1 << iota
)

// action names the change to a key's extended state that a transition makes.
// Actions are data: apply performs them, in plain Go, outside stateless.
type action uint8

const (
	actNone action = iota
	actCount
	actLock
	actHold
	actExpire
	actExtend
	actRepeat
	actClear
	actReset
	actInvalid // no behaviour: the caller broke R-ADMIT's promise
)

var actionNames = [...]string{"none", "count", "lock", "hold", "expire", "extend", "repeat", "clear", "reset", "invalid"}

func (a action) String() string { return actionNames[a] }

// cell is the per-call external storage: the one firing's mode and the
// action its behaviour chose. Nothing is shared between calls.
type cell struct {
	mode Mode
	act  action
}

type cellKey struct{}

func cellOf(ctx context.Context) *cell {
	c, _ := ctx.Value(cellKey{}).(*cell)
	return c
}

func readMode(ctx context.Context) (stateless.State, error) {
	if c := cellOf(ctx); c != nil {
		return c.mode, nil
	}
	return Open, nil // ToGraph asks without a cell: draw Open as initial
}

func writeMode(ctx context.Context, s stateless.State) error {
	c := cellOf(ctx)
	if c == nil {
		return fmt.Errorf("lock machine fired without a cell")
	}
	c.mode = s.(Mode)
	return nil
}

func factsOf(args []any) facts { return args[0].(facts) }

// Guards: named, pure, cheap (they run several times per firing).

func belowThreshold(_ context.Context, args ...any) bool {
	return factsOf(args)&factReaches == 0
}
func reachesThreshold(_ context.Context, args ...any) bool {
	f := factsOf(args)
	return f&factReaches != 0 && f&factHoldDue == 0
}
func reachesHold(_ context.Context, args ...any) bool {
	f := factsOf(args)
	return f&factReaches != 0 && f&factHoldDue != 0
}
func lockElapsed(_ context.Context, args ...any) bool   { return factsOf(args)&factElapsed != 0 }
func lockRunning(_ context.Context, args ...any) bool   { return factsOf(args)&factElapsed == 0 }
func extendsLock(_ context.Context, args ...any) bool   { return factsOf(args)&factExtends != 0 }
func doesNotExtend(_ context.Context, args ...any) bool { return factsOf(args)&factExtends == 0 }
func clearedBySuccess(_ context.Context, args ...any) bool {
	return factsOf(args)&factCleared != 0
}
func keptBySuccess(_ context.Context, args ...any) bool { return factsOf(args)&factCleared == 0 }

// Actions: each only names what to do, in the per-call cell.

// The named action functions make the DOT graph read well.

func countFailure(ctx context.Context, _ ...any) error   { cellOf(ctx).act = actCount; return nil }
func enterLock(ctx context.Context, _ ...any) error      { cellOf(ctx).act = actLock; return nil }
func enterHold(ctx context.Context, _ ...any) error      { cellOf(ctx).act = actHold; return nil }
func enterExpired(ctx context.Context, _ ...any) error   { cellOf(ctx).act = actExpire; return nil }
func extendUntil(ctx context.Context, _ ...any) error    { cellOf(ctx).act = actExtend; return nil }
func recordRepeat(ctx context.Context, _ ...any) error   { cellOf(ctx).act = actRepeat; return nil }
func clearOnSuccess(ctx context.Context, _ ...any) error { cellOf(ctx).act = actClear; return nil }
func resetKey(ctx context.Context, _ ...any) error       { cellOf(ctx).act = actReset; return nil }

// errNotPermitted is returned for a (mode, trigger) with no behaviour.
type errNotPermitted struct {
	mode    Mode
	trigger trigger
	unmet   []string
}

func (e errNotPermitted) Error() string {
	return fmt.Sprintf("trigger %s not permitted in mode %s (unmet guards %v)", e.trigger, e.mode, e.unmet)
}

// newMachine builds the one transition table of a key (SPEC §2–§4). It is
// built once, then only read: immediate firing, external storage in a
// per-call cell (reference/formal-style-anchors.md §1.3, §7.2).
func newMachine() *stateless.StateMachine {
	sm := stateless.NewStateMachineWithExternalStorage(readMode, writeMode, stateless.FiringImmediate)
	for t := trigger(0); t < numTriggers; t++ {
		sm.SetTriggerParameters(t, reflect.TypeOf(facts(0)))
	}
	sm.OnUnhandledTrigger(func(_ context.Context, s stateless.State, t stateless.Trigger, unmet []string) error {
		return errNotPermitted{mode: s.(Mode), trigger: t.(trigger), unmet: unmet}
	})

	sm.Configure(Open).
		Ignore(trigExpire).
		InternalTransition(trigFail, countFailure, belowThreshold).
		Permit(trigFail, Locked, reachesThreshold).
		Permit(trigFail, Held, reachesHold).
		InternalTransition(trigRepeat, recordRepeat).
		Ignore(trigRefuse).
		InternalTransition(trigSucceed, clearOnSuccess, clearedBySuccess).
		Ignore(trigSucceed, keptBySuccess).
		InternalTransition(trigUnlock, resetKey).
		OnEntryFrom(trigExpire, enterExpired).
		OnEntryFrom(trigSucceed, clearOnSuccess).
		OnEntryFrom(trigUnlock, resetKey)

	// A Locked key sees no Fail or Repeat: R-ADMIT refuses every attempt a
	// Locked pair or source covers, and a Locked principal counts nothing
	// from the familiar sources it admits (R-FAIL). A success from such a
	// familiar source leaves the principal's lock as it is, whatever
	// resetOnSuccess names: only R-UNLOCK, R-RESET and R-FACTORY may move
	// an until earlier (INV-NOSHORTEN), and the owner signing in from home
	// says nothing about the stranger the lock is holding off.
	sm.Configure(Locked).
		OnEntryFrom(trigFail, enterLock).
		Permit(trigExpire, Open, lockElapsed).
		Ignore(trigExpire, lockRunning).
		InternalTransition(trigRefuse, extendUntil, extendsLock).
		Ignore(trigRefuse, doesNotExtend).
		Ignore(trigSucceed).
		Permit(trigUnlock, Open)

	// A Held key admits nothing, so it sees no Fail, Repeat or Succeed.
	sm.Configure(Held).
		OnEntryFrom(trigFail, enterHold).
		Permit(trigExpire, Open, lockElapsed).
		Ignore(trigExpire, lockRunning).
		Ignore(trigRefuse).
		Permit(trigUnlock, Open)
	return sm
}

// transition is one compiled entry: where a mode goes and what it does.
type transition struct {
	dest Mode
	act  action
}

// table is the compiled transition table: every (mode, trigger, facts).
type table [3][numTriggers][numFactCombos]transition

// machine is the stateless configuration, built once at package init.
var machine = newMachine()

// compiled is derived from machine at package init by firing it on every
// input; Decide's hot path reads it. TestCompiledTableMatchesStateless
// checks the derivation and the equality of both decide paths.
var compiled = compile(fireStateless)

// fireStateless fires one trigger on the stateless machine with a fresh cell.
func fireStateless(m Mode, t trigger, f facts) transition {
	c := &cell{mode: m}
	ctx := context.WithValue(context.Background(), cellKey{}, c)
	if err := machine.FireCtx(ctx, t, f); err != nil {
		return transition{dest: m, act: actInvalid}
	}
	return transition{dest: c.mode, act: c.act}
}

func compile(fire func(Mode, trigger, facts) transition) *table {
	var t table
	for m := Open; m <= Held; m++ {
		for tr := trigger(0); tr < numTriggers; tr++ {
			for f := 0; f < numFactCombos; f++ {
				t[m][tr][f] = fire(m, tr, facts(f))
			}
		}
	}
	return &t
}

// StateGraph is the lock machine as Graphviz DOT, generated by stateless;
// docs/state-machine.dot is this text (a test keeps it fresh).
func StateGraph() string { return machine.ToGraph() }
