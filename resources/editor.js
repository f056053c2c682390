/**
 * What the edit dialogs of node-red-contrib-redis-sync share. Every nodes/<type>/<type>.html
 * loads this file before its own script:
 *
 *   <script src="resources/node-red-contrib-redis-sync/editor.js"></script>
 *
 * Node-RED (1.3 and later) serves a package's resources/ folder at resources/<package>/ and
 * runs a node set's script files before its inline scripts. Each node set loads it, so it
 * runs once per set: it only defines the one global RedisSyncEditor, and keeps no state.
 * Plain ES5, as the .html scripts; test/support/node-red.ts (editorDefinition) runs it in a
 * sandbox too, with a `$` that finds nothing.
 *
 * A property's validate must declare two parameters, (value, opt), even when it does not
 * use opt: Node-RED's validateNodeProperty (checked in 4.1 and 5.0) takes a returned string
 * as "invalid, with this message" only from a two-parameter validate; from any other it is
 * merely truthy, so the field is never marked (test/editor.test.ts checks every node).
 */
// the one global, which the nodes' .html scripts use
/* exported RedisSyncEditor */
var RedisSyncEditor = (function () {
    "use strict";
    var MODULE = "node-red-contrib-redis-sync";

    /** RED._ over a type's own catalog: t("errors.port") looks up "<module>/<type>:<type>.errors.port". */
    function translator(type) {
        var ns = MODULE + "/" + type + ":" + type + ".";
        return function (key, substitutions) {
            return RED._(ns + key, substitutions);
        };
    }

    /**
     * A field's current value. Validators run both while the dialog is open (where the node's
     * saved values of the other fields are stale) and on deploy (where there is no dialog):
     * read the field from the dialog if it is there. A config node's fields are
     * #node-config-input-<prop> (pass config true), other nodes' #node-input-<prop>.
     */
    function current(node, prop, config) {
        var input = $("#" + (config ? "node-config-input-" : "node-input-") + prop);
        if (input.length === 0) {
            return node[prop];
        }
        return input.attr("type") === "checkbox" ? input.prop("checked") : input.val();
    }

    /** The terms of a list typed with commas, spaces or new lines between them. */
    function words(text) {
        return String(text || "").split(/[\s,]+/).filter(function (w) { return w !== ""; });
    }

    /**
     * A db list as lib/ops/db-list.ts reads it ("0, 2-4": numbers and ranges), as db numbers,
     * or null when a term is not one.
     */
    function dbList(text) {
        var dbs = [];
        var terms = words(text);
        for (var i = 0; i < terms.length; i++) {
            var m = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(terms[i]);
            if (m === null || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
                return null;
            }
            for (var db = Number(m[1]); db <= Number(m[2] === undefined ? m[1] : m[2]); db++) {
                dbs.push(db);
            }
        }
        return dbs;
    }

    /** Whether v (a number or text) is a number from min to max, a whole one when integer is set. */
    function numberIn(v, min, max, integer) {
        var text = String(v === undefined || v === null ? "" : v).trim();
        var n = Number(text);
        return text !== "" && isFinite(n) && n >= min && n <= max && (!integer || Math.floor(n) === n);
    }

    /** A property's validate: true for numberIn(v, min, max, integer), else the message t(key). */
    function inRange(t, key, min, max, integer) {
        return function (v, _opt) {
            return numberIn(v, min, max, integer) ? true : t(key);
        };
    }

    /** How a node's label names its redis-endpoint (by the config node's id). */
    function endpointName(id) {
        var ep = RED.nodes.node(id);
        if (!ep) {
            return "?";
        }
        return ep.name || (ep.mode === "cluster" ? "cluster" : ep.host + ":" + ep.port);
    }

    /** Every node's labelStyle: italic when the user named it. */
    function labelStyle() {
        return this.name ? "node_label_italic" : "";
    }

    return {
        translator: translator,
        current: current,
        words: words,
        dbList: dbList,
        numberIn: numberIn,
        inRange: inRange,
        endpointName: endpointName,
        labelStyle: labelStyle
    };
})();
