; C: definitions, references and includes for nanodex (capture names as in python/tags.scm).

(struct_specifier name: (_) @name body: (_)) @def.struct
(union_specifier name: (_) @name body: (_)) @def.struct
(enum_specifier name: (_) @name body: (_)) @def.enum
(function_definition) @def.function

(call_expression function: (identifier) @name) @ref.call
(call_expression function: (field_expression argument: (_) @receiver field: (field_identifier) @name)) @ref.call

(preproc_include) @import

(declaration type: (type_identifier) @local.type declarator: (identifier) @local.name) @local
(declaration type: (type_identifier) @local.type declarator: (init_declarator declarator: (identifier) @local.name)) @local

; Configuration keys read by a literal name: @config.env on the read, @config.key on the name.
(call_expression function: (identifier) @_f arguments: (argument_list . (string_literal) @config.key)
  (#any-of? @_f "getenv" "secure_getenv")) @config.env
