# SPDX-License-Identifier: Apache-2.0
"""chameleon: render an HTML table of ROWS x COLS cells with a Chameleon
page template (the pyperformance / FaaSnap chameleon benchmark).  The
template is compiled when the function loads.  Input ROWS:COLS; answer:
digest of the HTML."""

from chameleon import PageTemplate

from snapfn import digest

TEMPLATE = PageTemplate("""\
<table xmlns:tal="http://xml.zope.org/namespaces/tal">
<tr tal:repeat="row rows">
<td tal:repeat="c row" tal:content="c"/>
</tr>
</table>""")


def handler(arg):
    rows, cols = (int(x) for x in arg.split(":"))
    table = [["%d.%d" % (r, c) for c in range(cols)] for r in range(rows)]
    return digest(TEMPLATE.render(rows=table))
