// Renders chat templates with Go's text/template, the engine Ollama runs a Modelfile's TEMPLATE
// with, so that the Rust renderer in crates/whetstone-export can be checked against it.
//
//	cargo run -q -p whetstone-export --example go_template_cases > /tmp/cases.json
//	go run scripts/export/go_render.go < /tmp/cases.json > crates/whetstone-export/tests/fixtures/go_renderings.json
//
// Only text/template's built-in functions are used, so Ollama's extra functions are not needed.
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type entry struct {
	Name     string    `json:"name"`
	Template string    `json:"template"`
	Messages []message `json:"messages"`
	Rendered string    `json:"rendered"`
}

func main() {
	var cases []entry
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for i := range cases {
		tmpl, err := template.New("").Parse(cases[i].Template)
		if err != nil {
			panic(cases[i].Name + ": " + err.Error())
		}
		var sb strings.Builder
		if err := tmpl.Execute(&sb, map[string]any{"Messages": cases[i].Messages}); err != nil {
			panic(cases[i].Name + ": " + err.Error())
		}
		cases[i].Rendered = sb.String()
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", " ")
	out.SetEscapeHTML(false)
	if err := out.Encode(cases); err != nil {
		panic(err)
	}
}
