; TypeScript: definitions, references and imports for nanodex (capture names as in python/tags.scm).

(class_declaration name: (type_identifier) @name) @def.class
(abstract_class_declaration name: (type_identifier) @name) @def.class
(interface_declaration name: (type_identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(function_declaration name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name) @def.function
(method_definition name: (property_identifier) @name) @def.function
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function

(call_expression function: (identifier) @name) @ref.call
(call_expression function: (member_expression object: (_) @receiver property: (property_identifier) @name)) @ref.call
(new_expression constructor: (identifier) @name) @ref.new
(new_expression constructor: (member_expression object: (_) @receiver property: (property_identifier) @name)) @ref.new
(throw_statement (new_expression constructor: (identifier) @name)) @ref.throw

(class_heritage (extends_clause value: (identifier) @name)) @ref.extends
(class_heritage (extends_clause value: (member_expression object: (_) @receiver property: (property_identifier) @name))) @ref.extends
(class_heritage (implements_clause (type_identifier) @name)) @ref.implements
(extends_type_clause (type_identifier) @name) @ref.extends

(import_statement) @import
(variable_declarator value: (call_expression function: (identifier) @_req arguments: (arguments (string))) (#eq? @_req "require")) @import

(variable_declarator name: (identifier) @local.name type: (type_annotation (type_identifier) @local.type)) @local
(variable_declarator name: (identifier) @local.name value: (new_expression constructor: (identifier) @local.type)) @local
(public_field_definition name: (property_identifier) @local.name type: (type_annotation (type_identifier) @local.type)) @local.member
(required_parameter pattern: (identifier) @local.name type: (type_annotation (type_identifier) @local.type)) @local

; Configuration keys read by a literal name: @config.env on the read, @config.key on the name.
(member_expression object: (member_expression object: (identifier) @_p property: (property_identifier) @_e)
  property: (property_identifier) @config.key (#eq? @_p "process") (#eq? @_e "env")) @config.env
(subscript_expression object: (member_expression object: (identifier) @_p property: (property_identifier) @_e)
  index: (string) @config.key (#eq? @_p "process") (#eq? @_e "env")) @config.env
