// The parts of three.js the viewer page uses, bundled by scripts/build_viewer_assets.sh into one minified
// script that defines the global `PDThree`. Listing names (not `export * from "three"`) lets the bundler drop
// the rest of the library.
export {
  BufferAttribute,
  BufferGeometry,
  Color,
  DirectionalLight,
  DoubleSide,
  HemisphereLight,
  Mesh,
  MeshLambertMaterial,
  PerspectiveCamera,
  Points,
  PointsMaterial,
  Raycaster,
  Scene,
  SRGBColorSpace,
  Vector2,
  Vector3,
  WebGLRenderer,
} from "three";
export { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
