// Filled by the module's own files; see the folder.
export {};
