package console

// css is the console's style sheet (served at /console/console.css).
const css = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}
main{padding:16px;max-width:1200px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;margin-bottom:12px}
th,td{border:1px solid #d8dce3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}
form.box,section.box{background:#fff;border:1px solid #d8dce3;padding:10px;margin:8px 0;max-width:760px}
label{display:inline-block;margin:4px 12px 4px 0}
input[type=text],input[type=password],input[type=number],input[type=datetime-local],textarea,select{font:inherit;padding:3px 5px;border:1px solid #aab;border-radius:3px}
textarea{width:100%;max-width:720px}
button{font:inherit;padding:4px 12px;border-radius:3px;border:1px solid #345;background:#2d5bd7;color:#fff;cursor:pointer}
button.danger{background:#c0392b}
.flash{background:#e3f6e8;border:1px solid #6c6;padding:6px 10px;margin-bottom:10px}
.error{background:#fdecea;border:1px solid #e57373;padding:6px 10px;margin-bottom:10px}
.bad{outline:2px solid #e53935}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;background:#ddd}
.badge.on{background:#fbc02d}.badge.red{background:#e57373;color:#fff}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{background:#fff;border:1px solid #d8dce3}
.chart rect{fill:#2d5bd7}.chart text{font-size:10px;fill:#555}.chart .axis{stroke:#999}
.muted{color:#667}
tr.added td{background:#e8f5e9}tr.removed td{background:#fdecea}tr.changed td{background:#fffde7}
del{color:#b71c1c}ins{color:#1b5e20;text-decoration:none}
`
