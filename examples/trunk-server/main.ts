// The trunk server needs the dialog and B2BUA layers, which have not landed yet.
// Rather than pretend, say what is missing and fail.
console.error(
  'sipkit trunk server: not built yet. The parser, digest, transport and transaction layers are in place;\n' +
    'the dialog layer, the B2BUA core and this server are the next issues (see CHANGELOG.md).',
);
process.exit(1);
