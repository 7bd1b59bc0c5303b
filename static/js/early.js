// Runs before first paint (a blocking script in <head>), so the JS-only controls never flash in or out.
document.documentElement.className = "js";
