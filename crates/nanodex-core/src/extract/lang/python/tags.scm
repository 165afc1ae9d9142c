; Python: definitions, references and imports for nanodex.
; Capture names: @def.<kind> on the definition node with @name; @ref.<kind> with @name and optional @receiver;
; @import on an import statement (read by mod.rs); @local / @local.member with @local.name and @local.type.

(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function

(call function: (identifier) @name) @ref.call
(call function: (attribute object: (_) @receiver attribute: (identifier) @name)) @ref.call

(raise_statement . (call function: (identifier) @name)) @ref.throw
(raise_statement . (call function: (attribute object: (_) @receiver attribute: (identifier) @name))) @ref.throw
(raise_statement . (identifier) @name) @ref.throw
(raise_statement . (attribute object: (_) @receiver attribute: (identifier) @name)) @ref.throw

(class_definition superclasses: (argument_list (identifier) @name)) @ref.extends
(class_definition superclasses: (argument_list (attribute object: (_) @receiver attribute: (identifier) @name))) @ref.extends

(import_statement) @import
(import_from_statement) @import

(assignment left: (identifier) @local.name right: (call function: (identifier) @local.type)) @local
(assignment left: (attribute object: (identifier) @_self attribute: (identifier) @local.name)
  right: (call function: (identifier) @local.type) (#eq? @_self "self")) @local.member
