"""Launch the EasyOcc occupancy node (ROS 2 Humble or Jazzy, after `colcon build` of ros_node/).

    ros2 launch easyocc_ros easyocc.launch.py model_path:=/path/model.onnx [rig_file:=rig.yaml]
        [image_transport:=compressed] [frame_id:=base_link] [params_file:=easyocc.yaml]

Every node parameter is a launch argument, with its default and description from the one table
(easyocc.ros_node.params.PARAMETERS; `ros2 launch ... --show-args` lists them); the arguments that
differ from the defaults are parsed and checked like `easyocc ros run -p name:=value`. The node
configures and activates itself (autostart:=true); set autostart:=false to drive its lifecycle from a
lifecycle manager instead. params_file (YAML, under `easyocc: ros__parameters:`) comes after them.
"""

from easyocc.ros_node.params import launch_arguments, launch_parameters
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

LAUNCH_ONLY = {
    "params_file": ("", "optional YAML with further parameters"),
    "namespace": ("", "node namespace"),
    "large_data_profile": ("true", "give Fast DDS a 64 MB shared-memory segment (ros_node/dds_profile.py)"),
}
LAUNCH_DEFAULTS: dict[str, str] = {}  # autostart: the node's own default (true) holds for every entry point


def _large_data_profile_path() -> str:
    from easyocc.ros_node.dds_profile import profile_path

    return str(profile_path())


def _node(context):
    texts = {name: LaunchConfiguration(name).perform(context) for name, _, _ in launch_arguments()}
    parameters = [launch_parameters(texts)]
    params_file = LaunchConfiguration("params_file").perform(context)
    if params_file:
        parameters.append(params_file)
    return [
        LifecycleNode(
            package="easyocc_ros",
            executable="easyocc_node",
            name="easyocc",
            namespace=LaunchConfiguration("namespace").perform(context),
            output="screen",
            parameters=parameters,
        )
    ]


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(name, default_value=LAUNCH_DEFAULTS.get(name, default), description=text)
        for name, default, text in launch_arguments()
    ]
    declared += [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in LAUNCH_ONLY.items()
    ]
    profile = SetEnvironmentVariable(
        "FASTRTPS_DEFAULT_PROFILES_FILE",
        _large_data_profile_path(),
        condition=IfCondition(LaunchConfiguration("large_data_profile")),
    )
    return LaunchDescription([*declared, profile, OpaqueFunction(function=_node)])
