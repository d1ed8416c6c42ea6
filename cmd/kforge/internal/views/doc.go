// Package views prints what kforge's commands produce, each view in a human and a JSON flavour.
// Commands hand views values; views never decide anything, they only render.
package views
