; C++: definitions, references and includes for nanodex (capture names as in python/tags.scm).
; Function names sit inside declarators (pointers, references, qualified ids); mod.rs reads them.
; `(_) @x (#kind-of? @x "a" "b")` in place of `[(a) (b)] @x`: the same matches, for a fraction of the time
; tree-sitter takes to analyse the pattern when it compiles the query (lang/mod.rs, `CompiledQuery::kinds_hold`).

(class_specifier name: (_) @name body: (_)) @def.class
(struct_specifier name: (_) @name body: (_)) @def.struct
(union_specifier name: (_) @name body: (_)) @def.struct
(enum_specifier name: (_) @name body: (_)) @def.enum
(namespace_definition name: (_) @name) @def.namespace
(function_definition) @def.function

(call_expression function: (_) @name (#kind-of? @name "identifier" "qualified_identifier")) @ref.call
(call_expression function: (field_expression argument: (_) @receiver field: (field_identifier) @name)) @ref.call
(call_expression function: (template_function name: (identifier) @name)) @ref.call
(new_expression type: (_) @name (#kind-of? @name "type_identifier" "qualified_identifier")) @ref.new
(new_expression type: (template_type name: (type_identifier) @name)) @ref.new

(throw_statement (call_expression function: (_) @name) (#kind-of? @name "identifier" "qualified_identifier")) @ref.throw
(throw_statement (new_expression type: (_) @name) (#kind-of? @name "type_identifier" "qualified_identifier")) @ref.throw
(throw_statement (identifier) @name) @ref.throw

(base_class_clause (_) @name (#kind-of? @name "type_identifier" "qualified_identifier")) @ref.extends
(base_class_clause (template_type name: (type_identifier) @name)) @ref.extends

(preproc_include) @import
(using_declaration) @import

(declaration type: (_) @local.type
  declarator: [(identifier) @local.name
               (init_declarator declarator: (identifier) @local.name)
               (pointer_declarator declarator: (identifier) @local.name)]
  (#kind-of? @local.type "type_identifier" "qualified_identifier")) @local
(field_declaration type: (_) @local.type declarator: (field_identifier) @local.name
  (#kind-of? @local.type "type_identifier" "qualified_identifier")) @local.member
(parameter_declaration type: (_) @local.type
  declarator: [(identifier) (reference_declarator (identifier)) (pointer_declarator (identifier))] @local.name
  (#kind-of? @local.type "type_identifier" "qualified_identifier")) @local

; Configuration keys read by a literal name: @config.env on the read, @config.key on the name.
(call_expression function: [(identifier) @_f (qualified_identifier name: (identifier) @_f)]
  arguments: (argument_list . (string_literal) @config.key)
  (#any-of? @_f "getenv" "secure_getenv")) @config.env
