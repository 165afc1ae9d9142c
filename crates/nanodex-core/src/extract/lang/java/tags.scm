; Java: definitions, references and imports for nanodex (capture names as in python/tags.scm).

(class_declaration name: (identifier) @name) @def.class
(record_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(annotation_type_declaration name: (identifier) @name) @def.trait
(method_declaration name: (identifier) @name) @def.function
(constructor_declaration name: (identifier) @name) @def.constructor

(method_invocation object: (_) @receiver name: (identifier) @name) @ref.call
(method_invocation !object name: (identifier) @name) @ref.call
(object_creation_expression type: [(type_identifier) (scoped_type_identifier)] @name) @ref.new
(object_creation_expression type: (generic_type [(type_identifier) (scoped_type_identifier)] @name)) @ref.new

(throw_statement (object_creation_expression type: [(type_identifier) (scoped_type_identifier)] @name)) @ref.throw
(throws [(type_identifier) (scoped_type_identifier)] @name) @ref.throw

(superclass [(type_identifier) (scoped_type_identifier)] @name) @ref.extends
(superclass (generic_type [(type_identifier) (scoped_type_identifier)] @name)) @ref.extends
(extends_interfaces (type_list [(type_identifier) (scoped_type_identifier)] @name)) @ref.extends
(extends_interfaces (type_list (generic_type [(type_identifier) (scoped_type_identifier)] @name))) @ref.extends
(super_interfaces (type_list [(type_identifier) (scoped_type_identifier)] @name)) @ref.implements
(super_interfaces (type_list (generic_type [(type_identifier) (scoped_type_identifier)] @name))) @ref.implements

(import_declaration) @import
(package_declaration [(identifier) (scoped_identifier)] @package)

(local_variable_declaration type: (type_identifier) @local.type declarator: (variable_declarator name: (identifier) @local.name)) @local
(field_declaration type: (type_identifier) @local.type declarator: (variable_declarator name: (identifier) @local.name)) @local.member
(formal_parameter type: (type_identifier) @local.type name: (identifier) @local.name) @local

; Configuration keys read by a literal name: @config.env / @config.property on the read, @config.key on the name.
(method_invocation object: (identifier) @_sys name: (identifier) @_m arguments: (argument_list . (string_literal) @config.key)
  (#eq? @_sys "System") (#eq? @_m "getenv")) @config.env
(method_invocation name: (identifier) @_m arguments: (argument_list . (string_literal) @config.key)
  (#any-of? @_m "getProperty" "privilegedGetProperty")) @config.property
(method_invocation object: (identifier) @_t name: (identifier) @_m arguments: (argument_list . (string_literal) @config.key)
  (#any-of? @_t "Integer" "Long" "Boolean") (#any-of? @_m "getInteger" "getLong" "getBoolean")) @config.property
