; C++: definitions, references and includes for nanodex (capture names as in python/tags.scm).
; Function names sit inside declarators (pointers, references, qualified ids); mod.rs reads them.

(class_specifier name: (_) @name body: (_)) @def.class
(struct_specifier name: (_) @name body: (_)) @def.struct
(union_specifier name: (_) @name body: (_)) @def.struct
(enum_specifier name: (_) @name body: (_)) @def.enum
(namespace_definition name: (_) @name) @def.namespace
(function_definition) @def.function

(call_expression function: [(identifier) (qualified_identifier)] @name) @ref.call
(call_expression function: (field_expression argument: (_) @receiver field: (field_identifier) @name)) @ref.call
(call_expression function: (template_function name: (identifier) @name)) @ref.call
(new_expression type: [(type_identifier) (qualified_identifier)] @name) @ref.new
(new_expression type: (template_type name: (type_identifier) @name)) @ref.new

(throw_statement (call_expression function: [(identifier) (qualified_identifier)] @name)) @ref.throw
(throw_statement (new_expression type: [(type_identifier) (qualified_identifier)] @name)) @ref.throw
(throw_statement (identifier) @name) @ref.throw

(base_class_clause [(type_identifier) (qualified_identifier)] @name) @ref.extends
(base_class_clause (template_type name: (type_identifier) @name)) @ref.extends

(preproc_include) @import
(using_declaration) @import

(declaration type: [(type_identifier) (qualified_identifier)] @local.type declarator: (identifier) @local.name) @local
(declaration type: [(type_identifier) (qualified_identifier)] @local.type declarator: (init_declarator declarator: (identifier) @local.name)) @local
(declaration type: [(type_identifier) (qualified_identifier)] @local.type declarator: (pointer_declarator declarator: (identifier) @local.name)) @local
(field_declaration type: [(type_identifier) (qualified_identifier)] @local.type declarator: (field_identifier) @local.name) @local.member
(parameter_declaration type: [(type_identifier) (qualified_identifier)] @local.type declarator: [(identifier) (reference_declarator (identifier)) (pointer_declarator (identifier))] @local.name) @local

; Configuration keys read by a literal name: @config.env on the read, @config.key on the name.
(call_expression function: [(identifier) @_f (qualified_identifier name: (identifier) @_f)]
  arguments: (argument_list . (string_literal) @config.key)
  (#any-of? @_f "getenv" "secure_getenv")) @config.env
