package ndis_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/condis-project/condis/ndis"
)

var (
	rowRe    = regexp.MustCompile("^\\| `((?:Ndis|Protocol|Miniport)\\w+)` \\| (.+?) \\| (.+) \\|$")
	methodRe = regexp.MustCompile("`\\(\\*ndis\\.(\\w+)\\)\\.(\\w+)`")
	ifaceRe  = regexp.MustCompile("`ndis\\.(\\w+)\\.(\\w+)`")
	modelsRe = regexp.MustCompile(`\b(\w+) models ((?:Ndis|Protocol|Miniport)\w+)`)
)

var handleTypes = map[string]reflect.Type{
	"Binding": reflect.TypeOf(&ndis.Binding{}), "Adapter": reflect.TypeOf(&ndis.Adapter{}), "Mediator": reflect.TypeOf(&ndis.Mediator{}),
}

var ifaceTypes = map[string]reflect.Type{
	"CoVcHandlers": reflect.TypeOf((*ndis.CoVcHandlers)(nil)).Elem(), "CoOidHandlers": reflect.TypeOf((*ndis.CoOidHandlers)(nil)).Elem(),
	"Protocol": reflect.TypeOf((*ndis.Protocol)(nil)).Elem(), "ClientHandlers": reflect.TypeOf((*ndis.ClientHandlers)(nil)).Elem(),
	"CallManagerHandlers":  reflect.TypeOf((*ndis.CallManagerHandlers)(nil)).Elem(),
	"MiniportDataHandlers": reflect.TypeOf((*ndis.MiniportDataHandlers)(nil)).Elem(),
	"Miniport":             reflect.TypeOf((*ndis.Miniport)(nil)).Elem(),
}

// TestDDIMap checks docs/ddi-map.md against the code: every Go identifier
// it names exists, and every identifier whose doc comment says it models a
// DDI function is listed under that DDI name.
func TestDDIMap(t *testing.T) {
	raw, err := os.ReadFile("../docs/ddi-map.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{} // "Type.Method" -> DDI
	rows := 0
	for _, line := range strings.Split(string(raw), "\n") {
		m := rowRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		ddi, ids := m[1], m[2]
		found := false
		for _, mm := range methodRe.FindAllStringSubmatch(ids, -1) {
			found = true
			if _, ok := handleTypes[mm[1]].MethodByName(mm[2]); !ok {
				t.Errorf("%s: (*ndis.%s).%s does not exist", ddi, mm[1], mm[2])
			}
			listed[mm[1]+"."+mm[2]] = ddi
		}
		for _, mm := range ifaceRe.FindAllStringSubmatch(ids, -1) {
			found = true
			it, ok := ifaceTypes[mm[1]]
			if !ok {
				t.Errorf("%s: unknown interface ndis.%s", ddi, mm[1])
				continue
			}
			if _, ok := it.MethodByName(mm[2]); !ok {
				t.Errorf("%s: ndis.%s has no method %s", ddi, mm[1], mm[2])
			}
			listed[mm[2]] = ddi
		}
		if !found {
			t.Errorf("row for %s names no Go identifier", ddi)
		}
	}
	if rows < 100 {
		t.Fatalf("only %d DDI rows parsed", rows)
	}

	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		check := func(key string, doc *ast.CommentGroup) {
			if doc == nil {
				return
			}
			m := modelsRe.FindStringSubmatch(strings.Join(strings.Fields(doc.Text()), " "))
			if m == nil {
				return
			}
			if got, ok := listed[key]; !ok || got != m[2] {
				t.Errorf("%s says it models %s, but docs/ddi-map.md lists it under %q", key, m[2], got)
			}
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil || !d.Name.IsExported() {
					continue
				}
				recv := d.Recv.List[0].Type
				if s, ok := recv.(*ast.StarExpr); ok {
					recv = s.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					check(id.Name+"."+d.Name.Name, d.Doc)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					ts, ok := s.(*ast.TypeSpec)
					if !ok {
						continue
					}
					it, ok := ts.Type.(*ast.InterfaceType)
					if !ok {
						continue
					}
					for _, fld := range it.Methods.List {
						if len(fld.Names) == 1 {
							check(fld.Names[0].Name, fld.Doc)
						}
					}
				}
			}
		}
	}
}
