package schema

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed jsonschema/*.json
var jsonSchemas embed.FS

// JSONSchemas holds the JSON Schema (draft 2020-12) files of every format,
// named VERSION.json (the message data) and VERSION.attributes.json (its
// Pub/Sub attributes, where they are constrained), e.g.
// linkissuer.link.v1.json. $id values are urn:linkissuer:schema:NAME.
//
// The schemas document the structure for consumers in other languages; the
// Go validation in this package is the authority and checks more (name rules,
// ranges, cross-field consistency).
func JSONSchemas() fs.FS {
	sub, err := fs.Sub(jsonSchemas, "jsonschema")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// JSONSchema returns the JSON Schema file called name + ".json", where name
// is a version constant (JobV1, LinkV1, ...) optionally followed by
// ".attributes".
func JSONSchema(name string) ([]byte, error) {
	b, err := fs.ReadFile(jsonSchemas, "jsonschema/"+name+".json")
	if err != nil {
		return nil, fmt.Errorf("schema: no JSON Schema for %q: %w", name, err)
	}
	return b, nil
}
