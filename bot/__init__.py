"""Assembly of CSP Bot: settings, the Application, templates, the CLI and the demo."""
