package madang_test

// The public surface is public (docs: DESIGN "Layering"): a studio builds on
// madang from its own module, where no internal/ package can be imported, so
// no exported name of a library package may mention a type from one, and no
// doc comment or Example may send users to one. This test loads every
// package of the module except internal/ and examples/ ones (examples are
// proven copyable by .ci/copy-examples) and fails naming each violation.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestPublicAPINamesNoInternalType(t *testing.T) {
	got, err := checkPublicAPI(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		t.Errorf("%s: %s", v.Key, v.Msg)
	}
}

// The checker on a small module with a violation of every kind next to
// exported names that are fine: it must find exactly the violations.
func TestPublicAPICheckerFindsViolations(t *testing.T) {
	got, err := checkPublicAPI(filepath.Join("testdata", "publicapi"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range got {
		keys = append(keys, v.Key)
		t.Logf("%s: %s", v.Key, v.Msg)
	}
	want := []string{
		"pub (package doc)",
		"pub.Alias",
		"pub.Config.Secret",
		"pub.Config.Wrapped (doc)",
		"pub.Const",
		"pub.Embeds.Token",
		"pub.Example (Example)",
		"pub.Generic",
		"pub.Iface.Get",
		"pub.NewThing",
		"pub.NewThing (doc)",
		"pub.Promoted.Shared",
		"pub.Thing.Hidden",
		"pub.Thing.Secret",
		"pub.Var",
		"pub.Wrapper",
		"pub/sub.Nested",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("violations\n got %q\nwant %q", keys, want)
	}
}

// apiViolation is one exported name that mentions an internal package. Key
// names it by package path relative to the module ("session/sessiontest"),
// then the name ("Config.Clock"); a suffix says what mentions it: none for
// the types, " (doc)" for a doc comment, " (Example)" for an Example body.
type apiViolation struct {
	Key string
	Msg string
}

// listedPackage is what checkPublicAPI reads of `go list -json`.
type listedPackage struct {
	ImportPath   string
	Name         string
	Dir          string
	Export       string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	DepOnly      bool
	Module       *struct{ Path string }
	Error        *struct{ Err string }
}

// checkPublicAPI loads the module in dir with `go list -export -deps` and
// returns the violations of its public packages, sorted by key.
func checkPublicAPI(dir string) ([]apiViolation, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(goBin, "list", "-export", "-deps", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %v\n%s", dir, err, stderr.Bytes())
	}
	exports := map[string]string{}
	var targets []*listedPackage
	internalNames := map[string]bool{}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		p := new(listedPackage)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
		if p.DepOnly || p.Module == nil {
			continue
		}
		rel := relPath(p.Module.Path, p.ImportPath)
		switch {
		case isInternalPath(rel):
			internalNames[p.Name] = true
		case rel == "examples" || strings.HasPrefix(rel, "examples/"):
		default:
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("go list in %s: no public packages", dir)
	}
	names := slices.Sorted(maps.Keys(internalNames))
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	// A doc comment sends users to an internal package by its path
	// ("internal/clock") or by a qualified name ("clock.Fake").
	docRE := regexp.MustCompile(`internal/[\w/]*`)
	if len(names) > 0 {
		docRE = regexp.MustCompile(`internal/[\w/]*|\b(?:` + strings.Join(names, "|") + `)\.[A-Z]\w*`)
	}

	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	c := &apiChecker{docRE: docRE}
	for _, p := range targets {
		c.rel = relPath(p.Module.Path, p.ImportPath)
		pkg, err := imp.Import(p.ImportPath)
		if err != nil {
			return nil, err
		}
		c.checkTypes(pkg)
		for _, files := range [][]string{p.GoFiles, p.TestGoFiles, p.XTestGoFiles} {
			for _, name := range files {
				f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
				if err != nil {
					return nil, err
				}
				if strings.HasSuffix(name, "_test.go") {
					c.checkExamples(f)
				} else {
					c.checkDocs(f)
				}
			}
		}
	}
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Key < c.out[j].Key })
	// One entry per key: the first message says enough.
	return slices.CompactFunc(c.out, func(a, b apiViolation) bool { return a.Key == b.Key }), nil
}

// relPath is path relative to the module: "" for the module's root package,
// whose name then serves.
func relPath(module, path string) string {
	if path == module {
		return filepath.Base(module)
	}
	return strings.TrimPrefix(path, module+"/")
}

// isInternalPath reports whether an import path has an "internal" element,
// so that only its parent's tree may import it.
func isInternalPath(path string) bool {
	return slices.Contains(strings.Split(path, "/"), "internal")
}

type apiChecker struct {
	rel   string // the package being checked, relative to the module
	docRE *regexp.Regexp
	out   []apiViolation
}

func (c *apiChecker) report(key, format string, args ...any) {
	c.out = append(c.out, apiViolation{Key: c.rel + "." + key, Msg: fmt.Sprintf(format, args...)})
}

// checkTypes walks every exported object of pkg: functions, variables,
// constants, types with their type parameters, exported fields (embedded
// ones and those promoted from unexported embedded structs), methods
// (promoted ones included) and interface methods.
func (c *apiChecker) checkTypes(pkg *types.Package) {
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Func, *types.Var, *types.Const:
			c.checkType(name, obj.Type())
		case *types.TypeName:
			c.checkTypeName(obj)
		}
	}
}

func (c *apiChecker) checkTypeName(obj *types.TypeName) {
	name := obj.Name()
	if a, ok := obj.Type().(*types.Alias); ok {
		c.checkType(name, a.Rhs())
		return
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		return
	}
	for tp := range named.TypeParams().TypeParams() {
		c.checkType(name, tp.Constraint())
	}
	switch u := named.Underlying().(type) {
	case *types.Struct:
		c.checkFields(name, u, map[*types.Struct]bool{})
	case *types.Interface:
		for e := range u.EmbeddedTypes() {
			c.checkType(name, e)
		}
	default:
		c.checkType(name, u)
	}
	var ms *types.MethodSet
	if types.IsInterface(named) {
		ms = types.NewMethodSet(named)
	} else {
		ms = types.NewMethodSet(types.NewPointer(named))
	}
	for sel := range ms.Methods() {
		if m := sel.Obj(); m.Exported() {
			c.checkType(name+"."+m.Name(), m.Type())
		}
	}
}

// checkFields checks the exported fields of st, and the fields promoted
// from its unexported embedded structs.
func (c *apiChecker) checkFields(name string, st *types.Struct, seen map[*types.Struct]bool) {
	if seen[st] {
		return
	}
	seen[st] = true
	for f := range st.Fields() {
		if f.Exported() {
			c.checkType(name+"."+f.Name(), f.Type())
			continue
		}
		if !f.Embedded() {
			continue
		}
		t := f.Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if inner, ok := t.Underlying().(*types.Struct); ok {
			c.checkFields(name, inner, seen)
		}
	}
}

func (c *apiChecker) checkType(key string, t types.Type) {
	for _, n := range internalTypes(t, map[types.Type]bool{}) {
		c.report(key, "mentions %s", n)
	}
}

// internalTypes returns the named types of internal packages that t
// mentions. It does not look inside the named types of other packages:
// their own exported names are checked where they are declared.
func internalTypes(t types.Type, seen map[types.Type]bool) []string {
	if t == nil || seen[t] {
		return nil
	}
	seen[t] = true
	var out []string
	walk := func(ts ...types.Type) {
		for _, t := range ts {
			out = append(out, internalTypes(t, seen)...)
		}
	}
	walkArgs := func(l *types.TypeList) {
		for t := range l.Types() {
			walk(t)
		}
	}
	switch t := t.(type) {
	case *types.Named:
		if p := t.Obj().Pkg(); p != nil && isInternalPath(p.Path()) {
			out = append(out, p.Path()+"."+t.Obj().Name())
		}
		walkArgs(t.TypeArgs())
	case *types.Alias:
		if p := t.Obj().Pkg(); p != nil && isInternalPath(p.Path()) {
			out = append(out, p.Path()+"."+t.Obj().Name())
		}
		walkArgs(t.TypeArgs())
	case *types.Pointer:
		walk(t.Elem())
	case *types.Slice:
		walk(t.Elem())
	case *types.Array:
		walk(t.Elem())
	case *types.Chan:
		walk(t.Elem())
	case *types.Map:
		walk(t.Key(), t.Elem())
	case *types.Tuple:
		for v := range t.Variables() {
			walk(v.Type())
		}
	case *types.Signature:
		for tp := range t.TypeParams().TypeParams() {
			walk(tp.Constraint())
		}
		walk(t.Params(), t.Results())
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() || f.Embedded() {
				walk(f.Type())
			}
		}
	case *types.Interface:
		for m := range t.ExplicitMethods() {
			walk(m.Type())
		}
		for e := range t.EmbeddedTypes() {
			walk(e)
		}
	case *types.Union:
		for term := range t.Terms() {
			walk(term.Type())
		}
	}
	return out
}

// checkDocs checks the doc comments of f's package clause and of its
// exported declarations, fields and interface methods.
func (c *apiChecker) checkDocs(f *ast.File) {
	check := func(key string, groups ...*ast.CommentGroup) {
		for _, g := range groups {
			if g == nil {
				continue
			}
			if m := c.docRE.FindString(g.Text()); m != "" {
				c.report(key+" (doc)", "doc comment mentions %q", m)
			}
		}
	}
	if f.Doc != nil {
		if m := c.docRE.FindString(f.Doc.Text()); m != "" {
			c.out = append(c.out, apiViolation{Key: c.rel + " (package doc)", Msg: fmt.Sprintf("package doc mentions %q", m)})
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			key := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				recv := recvName(d.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				key = recv + "." + key
			}
			check(key, d.Doc)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					name := s.Name.Name
					check(name, d.Doc, s.Doc, s.Comment)
					var fields *ast.FieldList
					switch tt := s.Type.(type) {
					case *ast.StructType:
						fields = tt.Fields
					case *ast.InterfaceType:
						fields = tt.Methods
					}
					if fields == nil {
						continue
					}
					for _, fld := range fields.List {
						names := fld.Names
						if len(names) == 0 { // embedded
							if id := embeddedName(fld.Type); id != nil {
								names = []*ast.Ident{id}
							}
						}
						for _, n := range names {
							if n.IsExported() {
								check(name+"."+n.Name, fld.Doc, fld.Comment)
							}
						}
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(n.Name, d.Doc, s.Doc, s.Comment)
						}
					}
				}
			}
		}
	}
}

func recvName(e ast.Expr) string {
	if id := embeddedName(e); id != nil {
		return id.Name
	}
	return ""
}

func embeddedName(e ast.Expr) *ast.Ident {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.SelectorExpr:
			return t.Sel
		case *ast.Ident:
			return t
		default:
			return nil
		}
	}
}

// checkExamples checks f's Example functions: neither their doc nor their
// body may use an internal package.
func (c *apiChecker) checkExamples(f *ast.File) {
	internal := map[string]string{} // local name -> path
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		if !isInternalPath(path) {
			continue
		}
		local := filepath.Base(path)
		if imp.Name != nil {
			local = imp.Name.Name
		}
		internal[local] = path
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
			continue
		}
		key := fn.Name.Name + " (Example)"
		if fn.Doc != nil {
			if m := c.docRE.FindString(fn.Doc.Text()); m != "" {
				c.report(key, "doc comment mentions %q", m)
			}
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && internal[id.Name] != "" {
					c.report(key, "uses %s.%s", internal[id.Name], sel.Sel.Name)
				}
			}
			return true
		})
	}
}
